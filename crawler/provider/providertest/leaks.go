package providertest

// Leak is an error text with secrets in it, recognisable by name (a
// parameter, a JSON field, a header), and what provider.RedactText makes
// of it.
type Leak struct{ Name, In, Want string }

// Leaks are the texts both provider.RedactText and the PostgreSQL
// migration that scrubs stored errors (schemas/postgres/0003_redact_errors.sql)
// are tested with, so the two keep the same rules.
var Leaks = []Leak{
	{"url error, the key last", `Get "https://ws.audioscrobbler.com/2.0/?user=rj&api_key=abc123": i/o timeout`,
		`Get "https://ws.audioscrobbler.com/2.0/?user=rj&api_key=REDACTED": i/o timeout`},
	{"query string, any case", "GET /2.0/?API_KEY=k1&Token=t1&page=2&api_sig=s1",
		"GET /2.0/?API_KEY=REDACTED&Token=REDACTED&page=2&api_sig=REDACTED"},
	{"form body", "grant_type=refresh_token&refresh_token=AQ-x_y.z&client_secret=cs&client_id=ci",
		"grant_type=refresh_token&refresh_token=REDACTED&client_secret=REDACTED&client_id=ci"},
	{"log line", `msg="token refresh" access_token=BQ-1 user=alice`,
		`msg="token refresh" access_token=REDACTED user=alice`},
	{"weak names only as parameters", "callback?code=c0de&state=s&key=k&sig=x; status code=500 key=value",
		"callback?code=REDACTED&state=s&key=REDACTED&sig=REDACTED; status code=500 key=value"},
	{"inside a quoted string", `bad payload "GET /x?api_key=k9\" x"`,
		`bad payload "GET /x?api_key=REDACTED\" x"`},
	{"authorization header", "request: Authorization: Bearer BQDx-1.2_3~4+5/6= Accept: */*",
		"request: Authorization: Bearer REDACTED Accept: */*"},
	{"authorization in a header map", "map[Authorization:[Basic Y2xpZW50OnNlY3JldA==] User-Agent:[topk/1.0]]",
		"map[Authorization:[Basic REDACTED] User-Agent:[topk/1.0]]"},
	{"authorization in JSON", `{"Authorization":"Bearer abc.def","Accept":"json"}`,
		`{"Authorization":"Bearer REDACTED","Accept":"json"}`},
	{"proxy authorization, no scheme", "Proxy-Authorization=opaque-value next",
		"Proxy-Authorization=REDACTED next"},
	{"bare bearer token", "upstream said: invalid bearer BQ0123456789abcdef, retry",
		"upstream said: invalid bearer REDACTED, retry"},
	{"bearer as a word stays", "no bearer token given", "no bearer token given"},
	{"JSON body of a token endpoint", `spotify token refresh: HTTP 502: {"access_token":"BQ-new","token_type":"Bearer","refresh_token" : "AQ-new","expires_in":3600}`,
		`spotify token refresh: HTTP 502: {"access_token":"REDACTED","token_type":"Bearer","refresh_token" : "REDACTED","expires_in":3600}`},
	{"JSON body cut at 200 bytes", `HTTP 500: {"error":"x","client_secret":"cs-0123`,
		`HTTP 500: {"error":"x","client_secret":"REDACTED`},
	{"JSON inside a quoted string", `body "{\"access_token\":\"BQ-9\",\"x\":1}"`,
		`body "{\"access_token\":\"REDACTED\",\"x\":1}"`},
	{"password in a URL", "dial postgres://topk:hunter22@db:5432/topk failed; http://127.0.0.1:8080/x@y stays",
		"dial postgres://topk:REDACTED@db:5432/topk failed; http://127.0.0.1:8080/x@y stays"},
	{"nothing secret", "last.fm error 17: Login: User required to be logged in",
		"last.fm error 17: Login: User required to be logged in"},
}
