package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/api"
	"github.com/topk-charts/topk/internal/wiring"
	"github.com/topk-charts/topk/store/postgres"
)

const tokenUsage = `usage: topk token <create|list|revoke> --user U [--id N]

Users' API tokens: the credential of the ListenBrainz api (Authorization:
Token <token>), one per scrobbler or device. PostgreSQL keeps only their
SHA-256 (docs/SECURITY.md). Each prints JSON on stdout.

  create --user U           make a token for U (and U's users row if missing);
                            the token is printed this once
  list --user U             U's tokens without the tokens: id, prefix, created,
                            last used, revoked
  revoke --user U [--id N]  revoke every valid token of U, or only token N;
                            at once`

// runToken: `topk token create|list|revoke --user U [--id N]`, the admin
// api's token endpoints from the command line, on PostgreSQL directly
// (like `topk rekey`; it needs no token key, Redis or api).
func runToken(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(env.Stderr, tokenUsage)
		return flag.ErrHelp
	}
	sub := args[0]
	switch sub {
	case "create", "list", "revoke":
	default:
		fmt.Fprintln(env.Stderr, tokenUsage)
		return flag.ErrHelp
	}
	fs := flags(env, "token "+sub)
	fs.Usage = func() { fmt.Fprintln(env.Stderr, tokenUsage) }
	user := fs.String("user", "", "user id (required)")
	var id *int64
	if sub == "revoke" {
		id = fs.Int64("id", 0, "revoke only this token (default: every valid token of the user)")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch {
	case *user == "":
		fs.Usage()
		return errors.New("--user is required")
	case fs.NArg() > 0:
		fs.Usage()
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if id != nil && *id < 0 {
		return errors.New("--id must be a token id (a positive integer)")
	}
	pool, err := postgres.Open(ctx, wiring.Postgres(env.Config.Postgres))
	if err != nil {
		return err
	}
	defer pool.Close()
	store := postgres.NewStore(pool, nil) // API tokens only: no provider tokens, no key
	var out any
	note := ""
	switch sub {
	case "create":
		token, info, err := store.CreateToken(ctx, *user)
		if err != nil {
			return tokenError(err)
		}
		out = api.CreatedToken{Token: token, TokenInfo: info}
		note = fmt.Sprintf("token %d of %s: it will not be shown again (topk keeps only its SHA-256); give it to the scrobbler now, "+
			"and revoke it with `topk token revoke --user %s --id %d`", info.ID, *user, *user, info.ID)
	case "list":
		list, err := store.ListTokens(ctx, *user)
		if err != nil {
			return tokenError(err)
		}
		if list == nil {
			list = []topk.TokenInfo{}
		}
		out = map[string]any{"user_id": *user, "tokens": list}
	case "revoke":
		n := 1
		if *id > 0 {
			err = store.RevokeToken(ctx, *user, *id)
		} else {
			n, err = store.RevokeTokens(ctx, *user)
		}
		if err != nil {
			return tokenError(err)
		}
		out = map[string]int{"revoked": n}
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	if note != "" {
		fmt.Fprintln(env.Stderr, note)
	}
	return nil
}

// tokenError says what to do when the table is missing.
func tokenError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table
		return fmt.Errorf("%w (apply the migrations: topk migrate postgres)", err)
	}
	return err
}
