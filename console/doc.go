// Package console is evbus's web console for operators: a group's dead
// letters by cause, one dead letter with its ledger history and the
// actions on it, consumer-group lag per partition in records and in time,
// and an outbox's status. New returns it as an http.Handler, for a
// service's admin server; the evbus console command serves the same.
//
// What it promises:
//   - Authentication is required and New refuses a Config without a
//     credential: tokens (TokensFromEnv, LoadTokens) sent as
//     "Authorization: Bearer <token>", or entered once in the login form,
//     which sets an HttpOnly, SameSite=Strict session cookie (Secure under
//     TLS) holding a random session id, never the token. Tokens are
//     compared in constant time and never written to a page, a log or an
//     error.
//   - Two roles: a viewer reads; an operator also replays, discards,
//     parks and reveals. An anonymous request gets 401 (a browser the
//     login page), a viewer's action 403.
//   - Actions are POSTs refused cross-origin (Sec-Fetch-Site, Origin:
//     net/http.CrossOriginProtection) and, from a cookie's session,
//     without the session's CSRF token.
//   - Every response carries ContentSecurityPolicy, nosniff, no-referrer
//     and, for pages, Cache-Control: no-store; the CSS and the small
//     script are embedded: no external URL, it works offline.
//   - Dead letters' values show field names with masked values until an
//     operator reveals them, which the ledger records; Config.NeverShow
//     fields are never shown.
//
// GroupLag is the lag page's computation, for a Go caller.
//
// URLs: / (groups), /groups/{group} (its dead letters by fingerprint),
// /groups/{group}/fingerprints/{fp}, /groups/{group}/letter?id=ID,
// /groups/{group}/lag, /outbox, /login; actions POST to
// /groups/{group}/actions/{replay|discard|park|reveal}. docs/console.md
// says how to run and mount it.
package console
