/**
 * Requests the fuzz test found breaking the contract, shrunk, kept as regular tests
 * (regressions.test.ts sends each and holds the answer to the same oracle as the fuzz test).
 * When the fuzz test fails it prints the shrunk request in this form ("as a regression case"):
 * paste it here with a name, fix the server, and the case guards the fix on every run. Queue
 * names are written {q}-…, so that each run of the suite uses queues of its own.
 */
export const regressions: Array<[name: string, request: string]> = [
  [
    'a HEAD whose Content-Length Node refuses: the 400 carries no body',
    '{"from":"jobExists","mutations":["header Content-Length: abc"],"method":"HEAD","path":"/v1/queues/{q}-ops-0/jobs/j0","query":[],"headers":[["Content-Length","abc"]],"wire":{"via":"fetch"}}',
  ],
  [
    'a path with a trailing slash is no path of the API (it was routed past the intake: a 500)',
    '{"from":"enqueueBatch","mutations":["path /enqueue/batch/"],"method":"POST","path":"/enqueue/batch/","query":[],"headers":[["Content-Type","application/json"]],"body":{"kind":"json","value":[]},"wire":{"via":"fetch"}}',
  ],
  [
    'a long poll on an alias path with wait=1e309 (it polled without end)',
    '{"from":"next","mutations":["path /v1/next/","wait=\\"1e309\\""],"method":"GET","path":"/v1/next/","query":[{"name":"queue","value":"{q}-0"},{"name":"wait","value":"1e309"}],"headers":[],"wire":{"via":"fetch"}}',
  ],
  [
    'a Content-Type of its own on a route without a body',
    '{"from":"health","mutations":["Content-Type: text/plain; v=7"],"method":"GET","path":"/health","query":[],"headers":[["Content-Type","text/plain; v=7"]],"wire":{"via":"fetch"}}',
  ],
  [
    'HTTP/1.1 without Host (Node answered a bare 400)',
    '{"from":"hand-written","mutations":["HTTP/1.1 without Host"],"method":"GET","path":"/health","query":[],"headers":[],"wire":{"via":"bytes","text":"GET /health HTTP/1.1\\r\\nConnection: close\\r\\n\\r\\n","note":"HTTP/1.1 without Host","expect":[200]}}',
  ],
  [
    'CONNECT (Node closed the connection without an answer)',
    '{"from":"hand-written","mutations":["CONNECT"],"method":"CONNECT","path":"{host}","query":[],"headers":[],"wire":{"via":"bytes","text":"CONNECT {host} HTTP/1.1\\r\\nHost: {host}\\r\\n\\r\\n","note":"CONNECT","expect":[405]}}',
  ],
  [
    'a job key over the limit named in the query',
    `{"from":"complete","mutations":["job_id ← 😀×1024"],"method":"DELETE","path":"/v1/complete","query":[{"name":"queue","value":"{q}-0"},{"name":"job_id","value":"${'😀'.repeat(1024)}"}],"headers":[],"wire":{"via":"fetch"}}`,
  ],
  [
    'an Origin the server does not serve, on a path the API does not have',
    '{"from":"hand-written","mutations":["path /favicon.ico","header Origin: http://evil.example"],"method":"GET","path":"/favicon.ico","query":[],"headers":[["Origin","http://evil.example"]],"wire":{"via":"fetch"}}',
  ],
  [
    'a batch of 20 000 empty objects is refused before its elements are validated',
    '{"from":"enqueueBatch","mutations":["body Repeat({} ×20000)"],"method":"POST","path":"/enqueue/batch","query":[],"headers":[["Content-Type","application/json"]],"body":{"kind":"json","value":{"$repeat":[{"$object":{}},20000]}},"wire":{"via":"fetch"}}',
  ],
  [
    'a batch whose last element has a NUL in its payload stores nothing',
    '{"from":"enqueueBatch","mutations":["payload ← \\"x\\\\u0000\\""],"method":"POST","path":"/enqueue/batch","query":[],"headers":[["Content-Type","application/json"]],"body":{"kind":"json","value":[{"$object":{"id":"j1","queue":"{q}-1","timeout":30}},{"$object":{"id":"j2","queue":"{q}-1","timeout":30,"payload":"x\\u0000"}}]},"wire":{"via":"fetch"}}',
  ],
];
