package listen

import "testing"

func TestNewTopics(t *testing.T) {
	prod := NewTopics("")
	if prod.Raw != "user.listen.raw" || prod.Valid != "user.listen.valid" || prod.DLQ != "user.listen.dlq" {
		t.Fatalf("production names: %+v", prod)
	}
	test := NewTopics("t1")
	if test.Raw != "t1.user.listen.raw" || test.Valid != "t1.user.listen.valid" || test.DLQ != "t1.user.listen.dlq" {
		t.Fatalf("namespaced names: %+v", test)
	}
}
