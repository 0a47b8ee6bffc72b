package sitewide

import (
	"github.com/lovoo/goka"

	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
)

const groupName = "topk-sitewide"

// Group is the sitewide group of a namespace.
func Group(namespace string) goka.Group {
	return goka.Group(listen.Namespaced(namespace, groupName))
}

// Table is the sitewide group's table topic, "<group>-table": Key → Value.
func Table(namespace string) goka.Table { return goka.GroupTable(Group(namespace)) }

// Stage names this group in dead-letter headers and metrics.
const Stage = processors.StageSitewide
