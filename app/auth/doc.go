// Package auth holds the security primitives the account service builds
// on: argon2id password hashes, the password policy, session and API-key
// tokens, TOTP and recovery codes, username and email normalization, login
// throttling and CSRF tokens.
//
// It touches no storage. It computes the values the store keeps (hashes,
// never secrets) and checks what a request brings against them, so every
// rule here is testable without a database and the store stays plain SQL.
package auth
