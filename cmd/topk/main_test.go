package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"nope"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

func TestBadConfigurationNamesTheVariable(t *testing.T) {
	t.Setenv("TOPK_KAFKA_VALID_PARTITIONS", "10")
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"config"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "TOPK_KAFKA_VALID_PARTITIONS") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

func TestConfigShell(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"config", "--shell"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "export TOPK_KAFKA_BROKERS=") {
		t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
	}
}
