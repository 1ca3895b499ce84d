// The student's credential (issue 14 / the brief's decision 1): 16 Crockford base32 characters,
// shown as ABCD-EFGH-JKMN-PQRS. It arrives in the URL fragment (/join#<credential>), which browsers
// never send to a server, or typed as a code. Normalised like the server does it.

const CROCKFORD = /^[0-9A-HJKMNP-TV-Z]{16}$/;

/** Strip spaces and dashes, uppercase, I/L -> 1, O -> 0; null when it cannot be a credential. */
export function normalise(text) {
  const value = String(text || "")
    .replace(/[\s-]/g, "")
    .toUpperCase()
    .replace(/[IL]/g, "1")
    .replace(/O/g, "0");
  return CROCKFORD.test(value) ? value : null;
}

/** The credential from the fragment, removed from the address bar (and history) at once. */
export function takeFromFragment(location, history) {
  const fragment = decodeURIComponent((location.hash || "").slice(1));
  if (!fragment) return null;
  history.replaceState(null, "", location.pathname + location.search);
  return normalise(fragment);
}
