import { useState } from 'preact/hooks';

/** Asked for when the server has tokens; the token stays in this tab's session storage. */
export function TokenForm({ why, onToken }: { why: string | undefined; onToken: (token: string) => void }) {
  const [value, setValue] = useState('');
  const valid = /^[A-Za-z0-9\-._~+/]+=*$/.test(value.trim());
  return (
    <form
      class="card token-form"
      data-form="token"
      onSubmit={(e) => {
        e.preventDefault();
        if (valid) onToken(value.trim());
      }}
    >
      <h1>Sign in with a token</h1>
      <p>{why ?? 'This server needs a token.'} A reader token shows everything; an admin token can also act. It is kept for this tab only.</p>
      <label>
        Token
        <input type="password" name="token" autocomplete="off" value={value} onInput={(e) => setValue(e.currentTarget.value)} />
      </label>
      <button type="submit" disabled={!valid}>Use token</button>
    </form>
  );
}
