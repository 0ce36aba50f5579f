/**
 * What the server tells the page before its first call, in <meta> tags of index.html (the
 * Content-Security-Policy allows no inline script to carry it).
 */
export interface PageConfig {
  /** --ui-read-only: no actions for anybody. */
  readOnly: boolean;
  /** The server has tokens: ask for one before calling the API. */
  tokens: boolean;
}

function flag(name: string): boolean {
  return document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content === 'true';
}

export function readPageConfig(): PageConfig {
  return { readOnly: flag('relay-ui-read-only'), tokens: flag('relay-ui-tokens') };
}
