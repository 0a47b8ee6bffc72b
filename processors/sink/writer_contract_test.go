package sink

import "github.com/topk-charts/topk/processors/sink/sinktest"

// sinktest.Writer, what sinktest.WriterContract drives, is Writer: the
// writers' contract suite checks the sink's writers (rawwriter, flusher).
var (
	_ Writer          = sinktest.Writer(nil)
	_ sinktest.Writer = Writer(nil)
)
