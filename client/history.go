package client

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/baepo/baepo/agent/api"
)

// historyReader is a target that reads the agents' journals: [Agents], and
// the fleet of the CLI's test scripts.
type historyReader interface {
	History(ctx context.Context, server string, q api.HistoryQuery) (api.History, error)
}

// HistoryEntry is one step in an agent's history, with the server it ran on.
type HistoryEntry struct {
	api.HistoryEntry
	Server string `json:"server"`
}

// RunRecord is one run as the agents it ran a journaled step on recorded
// it, merged into one: its servers, and its instances as
// server/service/instance.
type RunRecord struct {
	api.Run
	Servers []string `json:"servers"`
}

// historyFlags are the flags of baepo history.
type historyFlags struct {
	server, inventory string
	query             api.HistoryQuery
	since             string
	steps             bool
	output            string
}

func (c *cli) historyCommand() *cobra.Command {
	var f historyFlags
	cmd := &cobra.Command{
		Use:   "history --server NAMES [--service S] [--instance I] [--since T] [--build B] [--steps] [--output json]",
		Short: "Show who deployed what, when, with what result, as the agents recorded it",
		Long: `history shows what the agents of --server recorded: by default one line per
run (when it started, how long it took, the servers it ran steps on, the
template, its outcome and exit code, the artifact and its digest, the
user, the Jenkins build and its URL); with --steps, one line per step.

A run is recorded by every agent it ran a step on that changes an
instance or checks its health; a run that only read (status, logs) is
not. A run over several servers is one line, its servers listed. A run
whose agent restarted before the run ended says "unknown"; one whose
end has not come (yet) says "running".`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := f.check(time.Now())
			if err != nil {
				return err
			}
			inv, err := LoadInventory(c.inventoryPath(f.inventory))
			if err != nil {
				return err
			}
			servers, err := inv.Resolve(f.server)
			if err != nil {
				return err
			}
			target, err := c.app.NewTarget(inv, c.app.Getenv, c.logger)
			if err != nil {
				return err
			}
			hr, ok := target.(historyReader)
			if !ok {
				return errors.New("internal error: the target reads no history")
			}
			runs, steps, err := fetchHistory(cmd.Context(), hr, servers, q, c.logger)
			if err != nil {
				return err
			}
			switch {
			case f.output == "json" && f.steps:
				return writeJSON(c.app.Stdout, map[string]any{"steps": steps})
			case f.output == "json":
				return writeJSON(c.app.Stdout, map[string]any{"runs": runs})
			case f.steps:
				printHistory(c.app.Stdout, steps)
			default:
				printRuns(c.app.Stdout, runs)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", "", "servers and groups of the inventory: `NAMES`, comma separated (required)")
	fl.StringVar(&f.query.Service, "service", "", "only this `SERVICE` (default: every service)")
	fl.StringVar(&f.query.Instance, "instance", "", "only runs and steps on instances of this `NAME`")
	fl.StringVar(&f.since, "since", "", "only what started since `T`: a duration back from now (24h, 7d) or an RFC 3339 time")
	fl.StringVar(&f.query.Build, "build", "", "only Jenkins build `B`: its BUILD_TAG, or JOB_NAME#BUILD_NUMBER")
	fl.IntVar(&f.query.Limit, "limit", 20, "show the newest `N` runs (steps with --steps)")
	fl.BoolVar(&f.steps, "steps", false, "one line per step instead of one per run")
	fl.StringVarP(&f.output, "output", "o", "table", "`FORMAT`: table or json")
	fl.StringVar(&f.inventory, "inventory", "", "inventory `FILE` (default $BAEPO_INVENTORY, else ./inventory.yaml)")
	return cmd
}

// check checks the flags and returns the query they make, --since read
// against now.
func (f *historyFlags) check(now time.Time) (api.HistoryQuery, error) {
	q := f.query
	switch {
	case f.server == "":
		return q, usagef("--server is required (a server or group name from inventory.yaml)")
	case q.Limit < 1:
		return q, usagef("--limit %d: give a number of entries of at least 1", q.Limit)
	case f.output != "table" && f.output != "json":
		return q, usagef("--output %q: give table or json", f.output)
	}
	if f.since != "" {
		t, err := parseSince(f.since, now)
		if err != nil {
			return q, err
		}
		q.Since = t
	}
	return q, nil
}

// maxSinceDays is the most days --since can go back: about 292 years,
// the longest time.Duration.
const maxSinceDays = math.MaxInt64 / int64(24*time.Hour)

// parseSince reads --since: a duration back from now (Go's, or whole
// days: 7d), or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	d, err := time.ParseDuration(s)
	if days, ok := strings.CutSuffix(s, "d"); ok && err != nil {
		n, nerr := strconv.Atoi(days)
		if nerr == nil && int64(n) > maxSinceDays {
			nerr = strconv.ErrRange // n days overflow a time.Duration
		}
		d, err = time.Duration(n)*24*time.Hour, nerr
	}
	if err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("--since %q: give a duration back from now (24h, 7d) or an RFC 3339 time (2026-12-01T08:00:00Z)", s)
}

// fetchHistory asks every server's agent for its history in parallel, and
// merges it: the newest q.Limit runs, a run that touched several servers
// once, and the newest q.Limit steps. An agent older than run records is
// named in a warning: its steps show with --steps.
func fetchHistory(ctx context.Context, hr historyReader, servers []string, q api.HistoryQuery, log *slog.Logger) ([]RunRecord, []HistoryEntry, error) {
	answers := make([]api.History, len(servers))
	err := parallel(len(servers), func(i int) (err error) {
		answers[i], err = hr.History(ctx, servers[i], q)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	runs := map[string]*RunRecord{}
	steps := []HistoryEntry{}
	for i, h := range answers {
		if h.Runs == nil {
			log.Warn("the agent records no runs (it is older than this baepo): baepo history --steps shows its steps", "server", servers[i])
		}
		for _, r := range h.Runs {
			mergeRun(runs, servers[i], r)
		}
		for _, e := range h.Entries {
			steps = append(steps, HistoryEntry{HistoryEntry: e, Server: servers[i]})
		}
	}
	merged := make([]RunRecord, 0, len(runs))
	for _, r := range runs {
		merged = append(merged, *r)
	}
	slices.SortFunc(merged, func(x, y RunRecord) int { return cmp.Or(y.Started.Compare(x.Started), strings.Compare(x.ID, y.ID)) })
	slices.SortStableFunc(steps, func(x, y HistoryEntry) int { return y.Time.Compare(x.Time) })
	return merged[:min(q.Limit, len(merged))], steps[:min(q.Limit, len(steps))], nil
}

// mergeRun adds server's record of r to runs. The records of one run
// differ where each agent saw a part of it: its first step there, and
// whether the client's end reached it. The end wins over none, a run
// still going over unknown.
func mergeRun(runs map[string]*RunRecord, server string, r api.Run) {
	instances := make([]string, len(r.Instances))
	for i, inst := range r.Instances {
		instances[i] = server + "/" + inst
	}
	r.Instances = instances
	m, ok := runs[r.ID]
	if !ok {
		runs[r.ID] = &RunRecord{Run: r, Servers: []string{server}}
		return
	}
	m.Servers = append(m.Servers, server)
	slices.Sort(m.Servers)
	instances = slices.Sorted(slices.Values(append(m.Instances, r.Instances...)))
	steps, started := m.Steps+r.Steps, m.Started
	if r.Started.Before(started) {
		started = r.Started
	}
	if m.ExitCode == nil && (r.ExitCode != nil || r.Outcome == api.OutcomeRunning) {
		m.Run = r
	}
	m.Instances, m.Steps, m.Started = instances, steps, started
}

// printRuns writes one line per run.
func printRuns(w io.Writer, runs []RunRecord) {
	rows := make([][]string, len(runs))
	for i, r := range runs {
		exit := "-"
		if r.ExitCode != nil {
			exit = strconv.Itoa(*r.ExitCode)
		}
		var arts []string
		for _, a := range r.Artifacts {
			arts = append(arts, a.Name+"@sha256:"+a.SHA256[:min(12, len(a.SHA256))])
		}
		rows[i] = []string{formatTime(r.Started), formatDuration(r.Duration), strings.Join(r.Servers, ","), orDefault(r.Template, "-"), r.Outcome, exit,
			orDefault(strings.Join(arts, ","), "-"), orDefault(r.User, "-"), buildName(r.Build), orDefault(r.Build.URL, "-")}
	}
	printTable(w, "no runs", []string{"STARTED", "DURATION", "SERVERS", "TEMPLATE", "OUTCOME", "EXIT", "ARTIFACT", "USER", "BUILD", "URL"}, rows)
}

// printHistory writes one line per step.
func printHistory(w io.Writer, entries []HistoryEntry) {
	rows := make([][]string, len(entries))
	for i, e := range entries {
		rows[i] = []string{formatTime(e.Time), e.Server, e.Service, e.Instance, e.Step, e.Result, formatDuration(e.Duration), buildName(e.Build), orDefault(e.Run, "-")}
	}
	printTable(w, "no history", []string{"TIME", "SERVER", "SERVICE", "INSTANCE", "STEP", "RESULT", "DURATION", "BUILD", "RUN"}, rows)
}

// printTable writes rows under header as aligned columns, or the line
// empty when there are none.
func printTable(w io.Writer, empty string, header []string, rows [][]string) {
	if len(rows) == 0 {
		fmt.Fprintln(w, empty)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, row := range append([][]string{header}, rows...) {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
}

// buildName is how a user names a build: its tag, else job#number; "-"
// for none.
func buildName(b api.Build) string {
	switch {
	case b.Tag != "":
		return b.Tag
	case b.Job != "":
		return b.Job + "#" + b.Number
	default:
		return "-"
	}
}

func formatTime(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
