package main

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/topk-charts/topk/config"
)

func quarantineEnv(namespace string) (*Env, *bytes.Buffer) {
	var errb bytes.Buffer
	c := config.Config{Namespace: namespace}
	c.Kafka.Brokers = []string{"127.0.0.1:9092"}
	return &Env{Config: c, Log: slog.New(slog.DiscardHandler), Stdout: io.Discard, Stderr: &errb}, &errb
}

func TestQuarantineGroupNames(t *testing.T) {
	for ns, want := range map[string]map[string]string{
		"": {"ingest": "topk-ingest", "aggregator": "topk-aggregator", "raw-writer": "topk-raw-writer", "flusher": "topk-flusher",
			"fanout": "topk-sitewide-fanout", "sitewide": "topk-sitewide", "sitewide-flusher": "topk-sitewide-flusher",
			"topk-ingest": "topk-ingest", "some.other-group": "some.other-group"},
		"t1": {"ingest": "t1.topk-ingest", "aggregator": "t1.topk-aggregator", "raw-writer": "t1.topk-raw-writer", "flusher": "t1.topk-flusher",
			"sitewide": "t1.topk-sitewide", "sitewide-flusher": "t1.topk-sitewide-flusher",
			"t1.topk-ingest": "t1.topk-ingest"},
	} {
		for short, group := range want {
			if got := quarantineGroup(ns, short); got != group {
				t.Errorf("namespace %q: --group %s → %s, want %s", ns, short, got, group)
			}
		}
	}
}

func TestParseQuarantine(t *testing.T) {
	env, _ := quarantineEnv("t1")
	qc, err := parseQuarantine(env, []string{"--group", "aggregator", "--topic", "t1.user.listen.valid", "--partition", "3",
		"--offset", "1234", "--note", "bad day", "--wait", "2m", "--dry-run"})
	if err != nil {
		t.Fatal(err)
	}
	if qc.Group != "t1.topk-aggregator" || qc.Topic != "t1.user.listen.valid" || qc.Partition != 3 || qc.Offset != 1234 ||
		qc.Note != "bad day" || qc.Wait != 2*time.Minute || !qc.DryRun || qc.Force || qc.DLQ != "t1.user.listen.dlq" ||
		len(qc.Brokers) != 1 {
		t.Fatalf("parsed %+v", qc)
	}
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--topic", "x", "--partition", "0", "--offset", "0"}, "--group required"},
		{[]string{"--group", "ingest", "--offset", "5"}, "--topic, --partition required"},
		{[]string{"--group", "ingest", "--topic", "x", "--partition", "0"}, "--offset required"},
		{[]string{"--group", "ingest", "--topic", "x", "--partition", "0", "--offset", "1", "extra"}, "unexpected arguments: extra"},
		{[]string{"--group", "ingest", "--topic", "x", "--partition", "0", "--offset", "1", "--wait", "-1s"}, "--wait -1s"},
		{[]string{"--group", "ingest", "--topic", "x", "--partition", "-1", "--offset", "1"}, "must be ≥ 0"},
		{[]string{"--group", "", "--topic", "x", "--partition", "0", "--offset", "1"}, "--group required"},
	} {
		env, errb := quarantineEnv("")
		_, err := parseQuarantine(env, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.says)
		}
		if strings.Contains(tc.says, "required") && !strings.Contains(errb.String(), "kafka-consumer-groups") && !strings.Contains(errb.String(), "ConsumerGroupCommand") {
			t.Errorf("%v: the usage does not say how to list groups:\n%s", tc.args, errb.String())
		}
	}
}
