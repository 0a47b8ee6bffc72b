// The attack runs' load generators, each its own process (this program
// re-run with -load): the ordinary clients and the attacker do not share
// the api's Go scheduler, heap and garbage collector, so what the table
// shows is the api's latency, not the load generator's; the cores are
// still shared (the CPU columns say how).

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// loadSpec is one load generator's work.
type loadSpec struct {
	Targets  []string      `json:"targets,omitempty"` // fixed URLs, round robin; empty: the attack's targeter
	Base     string        `json:"base,omitempty"`    // the attack's: api, users, today, view days
	Users    int           `json:"users,omitempty"`
	Today    time.Time     `json:"today,omitempty"`
	ViewDays int           `json:"view_days,omitempty"`
	From     string        `json:"from"`    // first client address
	Clients  int           `json:"clients"` // addresses
	Rate     int           `json:"rate"`
	Dur      time.Duration `json:"dur"`
}

// loadResult is result, as a load generator prints it.
type loadResult struct {
	P50, P99 time.Duration
	Success  float64
	N        int
	Codes    map[uint16]int
	Slow     map[int]int
}

// runLoad is the -load mode: run spec, print its result as JSON.
func runLoad(specJSON string) error {
	var spec loadSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return fmt.Errorf("-load: %w", err)
	}
	ip := net.ParseIP(spec.From)
	if ip == nil || spec.Clients < 1 {
		return fmt.Errorf("-load: from %q, %d clients", spec.From, spec.Clients)
	}
	c := newClients(ip, spec.Clients)
	defer c.close()
	var targeter vegeta.Targeter
	if len(spec.Targets) > 0 {
		ts := make([]vegeta.Target, len(spec.Targets))
		for i, u := range spec.Targets {
			ts[i] = vegeta.Target{Method: "GET", URL: u}
		}
		targeter = vegeta.NewStaticTargeter(ts...)
	} else {
		targeter = attackTargeter(spec.Base, spec.Users, spec.Today, spec.ViewDays)
	}
	r := hit(c, targeter, spec.Rate, spec.Dur)
	return json.NewEncoder(os.Stdout).Encode(loadResult{P50: r.p50, P99: r.p99, Success: r.success, N: r.n, Codes: r.codes, Slow: r.slow})
}

// loadProcess is a running load generator.
type loadProcess struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

// startLoad starts a load generator for spec.
func startLoad(spec loadSpec) (*loadProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	p := &loadProcess{}
	p.cmd = exec.Command(self, "-load", string(b))
	p.cmd.Stdout, p.cmd.Stderr = &p.out, os.Stderr
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

// wait waits for the load generator: its result and the CPU it used.
func (p *loadProcess) wait() (result, time.Duration, error) {
	if err := p.cmd.Wait(); err != nil {
		return result{}, 0, fmt.Errorf("load generator: %w", err)
	}
	var r loadResult
	if err := json.Unmarshal(p.out.Bytes(), &r); err != nil {
		return result{}, 0, fmt.Errorf("load generator's result %q: %w", p.out.String(), err)
	}
	cpu := p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
	return result{p50: r.P50, p99: r.P99, success: r.Success, n: r.N, codes: r.Codes, slow: r.Slow}, cpu, nil
}
