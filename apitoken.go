package topk

import "time"

// TokenInfo is a user's API token as it may be shown: everything but the
// token itself. The token (a random UUID, the credential of the
// ListenBrainz api's `Authorization: Token …`) is shown once, when it is
// made; the store keeps only its SHA-256 (schemas/postgres/0004).
type TokenInfo struct {
	ID     int64  `json:"id"`
	UserID string `json:"user_id"`
	// Prefix is the token's first 8 characters, to tell tokens apart.
	Prefix    string    `json:"prefix"`
	CreatedAt time.Time `json:"created_at"`
	// LastUsedAt is the last authentication with the token, to the
	// minute; nil if never.
	LastUsedAt *time.Time `json:"last_used_at"`
	// RevokedAt is when the token was revoked; nil while it is valid.
	RevokedAt *time.Time `json:"revoked_at"`
}
