package ops

import (
	"net/http"

	"github.com/gorilla/mux"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/web/index"
	"github.com/lovoo/goka/web/monitor"
)

// GokaPrefix is where the Goka monitor is served on ops ports and the api.
const GokaPrefix = "/goka"

// GokaMonitor serves Goka's monitor web UI of the given processors and
// views under GokaPrefix: partitions, recovery state, lag and throughput.
func GokaMonitor(procs []*goka.Processor, views []*goka.View) http.Handler {
	root := mux.NewRouter()
	mon := monitor.NewServer(GokaPrefix+"/monitor", root)
	for _, p := range procs {
		mon.AttachProcessor(p)
	}
	for _, v := range views {
		mon.AttachView(v)
	}
	idx := index.NewServer(GokaPrefix, root)
	idx.AddComponent(mon, "Monitor")
	root.Handle(GokaPrefix, http.RedirectHandler(GokaPrefix+"/", http.StatusFound))
	return root
}
