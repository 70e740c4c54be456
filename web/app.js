// wkv chat page: keeps the conversation in the page, streams replies from
// /v1/chat/completions (server-sent events), and can stop a reply mid-stream.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const log = $('log'), input = $('input'), send = $('send'), stop = $('stop');
  let messages = [];      // {role, content}
  let controller = null;  // AbortController of the running request

  function add(role, text) {
    const div = document.createElement('div');
    div.className = 'msg ' + role;
    div.textContent = text;
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
    return div;
  }
  function headers() {
    const h = { 'Content-Type': 'application/json' };
    const key = $('api_key').value.trim();
    if (key) h['Authorization'] = 'Bearer ' + key;
    return h;
  }
  function num(id) { return Number($(id).value); }
  function busy(on) { send.disabled = on; stop.disabled = !on; }

  async function ask(text) {
    messages.push({ role: 'user', content: text });
    add('user', text);
    const out = add('assistant streaming', '');
    const sys = $('system').value.trim();
    const body = {
      model: 'wkv', stream: true,
      messages: (sys ? [{ role: 'system', content: sys }] : []).concat(messages),
      temperature: num('temperature'), top_p: num('top_p'), top_k: num('top_k'),
      presence_penalty: num('presence_penalty'), frequency_penalty: num('frequency_penalty'),
      penalty_decay: num('penalty_decay'), max_tokens: num('max_tokens'),
    };
    controller = new AbortController();
    busy(true);
    let reply = '';
    try {
      const res = await fetch('/v1/chat/completions', {
        method: 'POST', headers: headers(), body: JSON.stringify(body), signal: controller.signal,
      });
      if (!res.ok) {
        let msg = res.status + ' ' + res.statusText;
        try { msg = (await res.json()).error.message; } catch (e) { /* keep the status */ }
        throw new Error(msg);
      }
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const event = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          for (const line of event.split('\n')) {
            if (!line.startsWith('data: ')) continue;
            const data = line.slice(6);
            if (data === '[DONE]') continue;
            const chunk = JSON.parse(data);
            const c = chunk.choices && chunk.choices[0];
            if (c && c.delta && c.delta.content) {
              reply += c.delta.content;
              out.textContent = reply;
              log.scrollTop = log.scrollHeight;
            }
          }
        }
      }
    } catch (e) {
      if (e.name !== 'AbortError') add('error', 'Error: ' + e.message);
    } finally {
      out.classList.remove('streaming');
      controller = null;
      busy(false);
    }
    if (reply) messages.push({ role: 'assistant', content: reply });
    else messages.pop();  // nothing came back: the turn is not kept
  }

  $('form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text || controller) return;
    input.value = '';
    ask(text);
  });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey) {
      ev.preventDefault();
      $('form').requestSubmit();
    }
  });
  stop.addEventListener('click', () => { if (controller) controller.abort(); });
  $('new').addEventListener('click', () => {
    if (controller) controller.abort();
    messages = [];
    log.textContent = '';
  });
  fetch('/v1/models', { headers: headers() }).then((r) => r.json()).then((j) => {
    if (j.data && j.data[0]) $('model').textContent = j.data[0].id;
  }).catch(() => {});
})();
