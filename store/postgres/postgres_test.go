package postgres

import "testing"

func TestURLEscapes(t *testing.T) {
	c := Config{Host: "h", Port: 1, User: "u@x", Password: "p:/@?#%", Database: "d", SSLMode: "disable"}
	if got, want := c.URL(), "postgres://u%40x:p%3A%2F%40%3F%23%25@h:1/d?sslmode=disable"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if got, want := c.URLFor("postgres"), "postgres://u%40x:p%3A%2F%40%3F%23%25@h:1/postgres?sslmode=disable"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}
