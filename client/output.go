package client

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lmittmann/tint"

	"github.com/baepo/baepo/engine"
)

// newLogger returns the human log: one line per event on w, coloured only
// when w is a terminal and neither NO_COLOR nor TERM=dumb says otherwise.
func newLogger(w io.Writer, getenv func(string) string) *slog.Logger {
	return slog.New(tint.NewHandler(w, &tint.Options{
		Level:      slog.LevelInfo,
		TimeFormat: "15:04:05",
		NoColor:    !colorful(w, getenv),
	}))
}

func colorful(w io.Writer, getenv func(string) string) bool {
	if getenv("NO_COLOR") != "" || getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// printSummary writes one row per step of every instance, a row with the
// outcome of every instance that did not succeed, and a final line with the
// run's outcome, counts, duration and the process exit code.
func printSummary(w io.Writer, rep *engine.Report, code int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tINSTANCE\tPHASE\tSTEP\tRESULT\tDURATION\tMESSAGE")
	for _, ir := range rep.Instances {
		inst := ir.Service + "/" + ir.Name
		for _, s := range ir.Steps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ir.Server, inst, s.Phase, s.Name, s.Result, formatDuration(s.Duration), orDefault(oneLine(s.Message), "-"))
		}
		if ir.Result != engine.ResultOK || len(ir.Steps) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\tinstance\t%s\t%s\t%s\n", ir.Server, inst, ir.Result, formatDuration(ir.Duration), orDefault(instanceMessage(ir), "-"))
		}
	}
	tw.Flush()
	fmt.Fprintln(w, outcomeLine(rep, code))
}

// instanceMessage is why an instance did not succeed.
func instanceMessage(ir engine.InstanceReport) string {
	if ir.Error == "" && ir.Result == engine.ResultSkipped {
		return "not started"
	}
	return oneLine(ir.Error)
}

// outcomeLine is the last line of a run's output.
func outcomeLine(rep *engine.Report, code int) string {
	counts := map[string]int{}
	for _, ir := range rep.Instances {
		counts[ir.Result]++
	}
	parts := []string{
		fmt.Sprintf("%d ok", counts[engine.ResultOK]),
		fmt.Sprintf("%d failed", counts[engine.ResultFailed]),
		fmt.Sprintf("%d rolled back", counts[engine.ResultRolledBack]),
		fmt.Sprintf("%d skipped", counts[engine.ResultSkipped]),
	}
	if n := counts[engine.ResultInterrupted]; n > 0 {
		parts = append(parts, fmt.Sprintf("%d interrupted", n))
	}
	line := fmt.Sprintf("%s %s: %s in %s; exit %d", rep.Template, rep.Outcome, strings.Join(parts, ", "), formatDuration(rep.Duration), code)
	if rep.Outcome == engine.OutcomeInterrupted && rep.Error != "" {
		line += " (" + oneLine(rep.Error) + ")"
	}
	return line
}

// printPlan writes, per instance and in order, the steps a dry run
// recorded: "web01 A/a1: stop, install(artifact=app.war), start, health(timeout=1m30s)".
func printPlan(w io.Writer, rep *engine.Report, code int) {
	for _, ir := range rep.Instances {
		var each, rollback []string
		for _, s := range ir.Steps {
			step := s.Name + formatArgs(s.Args)
			if s.Result != engine.ResultPlanned && s.Result != engine.ResultOK {
				step += " [" + s.Result + "]"
			}
			if s.Phase == "rollback" {
				rollback = append(rollback, step)
			} else {
				each = append(each, step)
			}
		}
		line := fmt.Sprintf("%s %s/%s: %s", ir.Server, ir.Service, ir.Name, strings.Join(each, ", "))
		if len(each) == 0 {
			line += "(no steps)"
		}
		if len(rollback) > 0 {
			line += "; rollback: " + strings.Join(rollback, ", ")
		}
		if ir.Result != engine.ResultOK {
			line += fmt.Sprintf(" [%s: %s]", ir.Result, instanceMessage(ir))
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "dry run of %s: %d %s, nothing changed; exit %d\n", rep.Template, len(rep.Instances), plural(len(rep.Instances), "instance", "instances"), code)
}

// formatArgs writes step args as "(k=v, k2=v2)", keys sorted; "" for none.
func formatArgs(args map[string]any) string {
	if len(args) == 0 {
		return ""
	}
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + formatArg(args[k])
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// formatArg writes a value the way a user would type it.
func formatArg(v any) string {
	switch v := v.(type) {
	case []string:
		return strings.Join(v, ",")
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = formatArg(e)
		}
		return strings.Join(parts, ",")
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return fmt.Sprint(v)
	}
}

// formatDuration rounds d for people: milliseconds, or microseconds below
// one millisecond; "-" for nothing.
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}

// oneLine keeps a message on one table row.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\t", " ")
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ⏎ ")), " ")
}
