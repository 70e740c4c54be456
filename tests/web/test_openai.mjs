// The official `openai` npm package against `wkv serve`: chat (plain and streamed, with usage),
// completions (greedy output equal to `wkv generate --temperature 0`), embeddings (the client's
// default base64 encoding), models, and errors surfacing as the client's typed exceptions.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import OpenAI from 'openai';
import { args, startServer } from './serve_util.mjs';

const { exe, model } = args();
const server = await startServer(exe, model, ['--api-key', 'test-key', '--parallel', '4']);
let failed = false;
try {
  const client = new OpenAI({ baseURL: server.url + '/v1', apiKey: 'test-key', maxRetries: 0 });

  const models = await client.models.list();
  assert.equal(models.data.length, 1);

  const messages = [{ role: 'user', content: 'Hello, who are you?' }];
  const chat = await client.chat.completions.create({ model: 'wkv', messages, max_tokens: 20, temperature: 0 });
  assert.equal(chat.object, 'chat.completion');
  const text = chat.choices[0].message.content;
  assert.equal(typeof text, 'string');
  assert.ok(['stop', 'length'].includes(chat.choices[0].finish_reason));
  assert.ok(chat.usage.prompt_tokens > 0);
  assert.equal(chat.usage.total_tokens, chat.usage.prompt_tokens + chat.usage.completion_tokens);

  const stream = await client.chat.completions.create({
    model: 'wkv', messages, max_tokens: 20, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  let streamed = '', chunks = 0, usage = null, finish = null;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (c && c.delta && c.delta.content) streamed += c.delta.content;
    if (c && c.finish_reason) finish = c.finish_reason;
  }
  assert.equal(streamed, text, 'streamed chat equals the non-streamed reply');
  assert.ok(chunks >= 3);
  assert.equal(finish, chat.choices[0].finish_reason);
  assert.deepEqual(usage.completion_tokens, chat.usage.completion_tokens);

  const prompt = 'In the beginning';
  const completion = await client.completions.create({ model: 'wkv', prompt, max_tokens: 40, temperature: 0 });
  const generated = execFileSync(exe, ['generate', '-m', model, '-p', prompt, '-n', '40', '--temperature', '0'],
                                 { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  assert.equal(completion.choices[0].text, generated.replace(/\n$/, ''), 'server greedy == wkv generate');
  assert.equal(completion.usage.completion_tokens, 40);

  const emb = await client.embeddings.create({ model: 'wkv', input: ['first sentence', 'second one'] });
  assert.equal(emb.data.length, 2);
  const v = emb.data[0].embedding;
  assert.ok(Array.isArray(v) && v.length > 0);
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  assert.ok(Math.abs(norm - 1) < 1e-3, 'unit norm, got ' + norm);
  const embFloat = await client.embeddings.create({ model: 'wkv', input: 'first sentence', encoding_format: 'float' });
  assert.ok(Math.abs(embFloat.data[0].embedding[0] - v[0]) < 1e-5);

  await assert.rejects(client.chat.completions.create({ model: 'wkv', messages: [], max_tokens: 5 }),
                       (e) => e instanceof OpenAI.BadRequestError && e.status === 400);
  await assert.rejects(client.chat.completions.create({ model: 'wkv', messages, temperature: 'hot' }),
                       (e) => e.status === 400 && e.param === 'temperature');
  const noKey = new OpenAI({ baseURL: server.url + '/v1', apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(noKey.models.list(), (e) => e instanceof OpenAI.AuthenticationError);
  console.log('test_openai: all checks passed');
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  const code = await server.stop();
  if (code !== 0) { console.error('wkv serve exited ' + code + ' after SIGTERM'); failed = true; }
}
process.exit(failed ? 1 : 0);
