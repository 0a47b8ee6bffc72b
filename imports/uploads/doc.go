// Package uploads runs the imports of history files uploaded to the api
// (POST /v1/users/{user}/imports): the upload is spooled to a file of the
// api copy that took it, checked (imports: a zip bomb is refused from its
// central directory, a file that is no history is refused), then sent to
// Kafka in the background by imports/send, its status (state, counts per
// reason and file, checkpoint) kept in PostgreSQL so that every api copy
// answers GET /v1/users/{user}/imports/{id}. An api copy that stops
// mid-import resumes it from the checkpoint when it starts again (Resume);
// the pipeline counts each listen once whatever is sent twice.
//
// Flow: upload → spool file → imports.Read → send.Run → user.listen.raw
// (+ user.listen.dlq), status → PostgreSQL imports table.
package uploads
