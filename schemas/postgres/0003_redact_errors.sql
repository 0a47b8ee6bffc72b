-- Scrub secrets from crawl errors stored before the crawler redacted them
-- (issue 12). A transport error repeats the whole request URL, and
-- Last.fm's API key travels in its query string; a provider's error body
-- may echo a token. Since then every provider error passes through
-- crawler/provider.Redact before it is stored; this rewrites the texts
-- already in schedules.last_error and crawl_runs.error with the same rules
-- by name (TestIntegrationRedactMigration checks that both give the same
-- text): the values of api_key=, token=, access_token=, refresh_token=,
-- client_secret=, password=… parameters; ?code=, &key=, &sig=… right
-- after ? or &; "access_token": "…"-style JSON fields; Authorization
-- headers; Bearer tokens; passwords in URLs. Each becomes REDACTED.
--
-- What it cannot scrub: a secret that appears without one of those names
-- before it (a token echoed bare in a body: the crawler redacts those by
-- their known value, which SQL does not have), and the copies outside
-- PostgreSQL: the error texts Asynq keeps in Redis with retried and
-- archived tasks (asynqmon shows them; the admin api redacts them by name
-- when it reads them; delete old archived tasks to drop them) and log
-- files already written.
CREATE FUNCTION pg_temp.topk_redact(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(t,
        -- scheme://user:password@host
        '([a-z][a-z0-9+.-]*://[^/\s:@"'']*:)[^/\s@"''?#]+@', '\1REDACTED@', 'gi'),
        -- Authorization: Bearer x, "Authorization":"Basic x", map[Authorization:[Bearer x]]
        '((proxy-)?authorization\\?"?\s*[:=]\s*\[?\\?"?\s*((bearer|basic|digest|token|negotiate|oauth)\s+)?)[^\s"'',\]}\\]+', '\1REDACTED', 'gi'),
        -- Bearer x anywhere else
        '(bearer\s+)[a-z0-9._~+/-]{8,}=*', '\1REDACTED', 'gi'),
        -- "access_token": "x"
        '(\\?"(access_token|refresh_token|id_token|client_secret|api_key|apikey|api_secret|token|secret|password|code)\\?"\s*:\s*\\?")[^"\\]*', '\1REDACTED', 'gi'),
        -- api_key=x
        '(^|[^a-z0-9_])(api_key|apikey|api_secret|api_sig|access_token|refresh_token|id_token|client_secret|session_key|code_verifier|token|secret|password|passwd)=[^&\s"''#\\;,)]*', '\1\2=REDACTED', 'gi'),
        -- ?code=x, &key=x
        '([?&])(code|key|sig|signature|sk|auth)=[^&\s"''#\\;,)]*', '\1\2=REDACTED', 'gi')
$$;

UPDATE schedules SET last_error = pg_temp.topk_redact(last_error)
WHERE last_error <> pg_temp.topk_redact(last_error);

UPDATE crawl_runs SET error = pg_temp.topk_redact(error)
WHERE error <> pg_temp.topk_redact(error);

DROP FUNCTION pg_temp.topk_redact(text);
