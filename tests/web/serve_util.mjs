// Starts `wkv serve` on a free 127.0.0.1 port and returns {url, stop()}.
// Usage of the tests: node test_X.mjs WKV_EXE MODEL
import { spawn } from 'node:child_process';

export function args() {
  const [exe, model] = process.argv.slice(2);
  if (!exe || !model) {
    console.error('usage: node ' + process.argv[1] + ' WKV_EXE MODEL');
    process.exit(2);
  }
  return { exe, model };
}

export function startServer(exe, model, extra = []) {
  return new Promise((resolve, reject) => {
    const proc = spawn(exe, ['serve', '-m', model, '--host', '127.0.0.1', '--port', '0', ...extra],
                       { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error('wkv serve did not start: ' + err)); }, 30000);
    proc.stderr.on('data', (d) => {
      err += d.toString();
      const m = err.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1],
          stop: () => new Promise((res) => { proc.on('exit', (code) => res(code)); proc.kill('SIGTERM'); }),
        });
      }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error('wkv serve exited ' + code + ': ' + err)); });
  });
}
