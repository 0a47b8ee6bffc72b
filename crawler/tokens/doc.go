// Package tokens seals provider tokens (Spotify access and refresh tokens)
// with AES-256-GCM before they reach PostgreSQL, and opens them again for
// the crawler; store/postgres (accounts.go) is the one package that seals
// and opens, so no token is written in plaintext. The key comes from
// TOPK_TOKEN_KEY; without it, services refuse to start unless
// TOPK_DEV_MODE=1, which generates a key file under the runtime directory
// and says so in the log. A Cipher also opens values sealed with the keys
// of TOPK_TOKEN_KEY_PREVIOUS, which is how the key is rotated (`topk
// rekey` re-seals them; docs/SECURITY.md).
//
// Flow: registration or a refresh → store/postgres (seal) → PostgreSQL
// provider_accounts → store/postgres (open, when a crawl claims its user)
// → crawler worker.
package tokens
