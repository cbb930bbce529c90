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
// An attribute of several lines (a failed health check's error carries the
// app server's log tail) keeps its first: the summary prints the rest once.
func newLogger(w io.Writer, getenv func(string) string) *slog.Logger {
	return slog.New(tint.NewHandler(w, &tint.Options{
		Level:       slog.LevelInfo,
		TimeFormat:  "15:04:05",
		NoColor:     !colorful(w, getenv),
		ReplaceAttr: firstLineAttr,
	}))
}

// firstLineAttr cuts a string or error attribute of several lines to its
// first, saying how many lines the summary shows after it.
func firstLineAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && slices.Contains([]string{slog.TimeKey, slog.LevelKey, slog.SourceKey, slog.MessageKey}, a.Key) {
		return a
	}
	var text string
	switch v := a.Value.Any().(type) {
	case string:
		text = v
	case error:
		text = v.Error()
	default:
		return a
	}
	head, detail, ok := strings.Cut(strings.TrimSpace(text), "\n")
	if !ok {
		return a
	}
	return slog.String(a.Key, fmt.Sprintf("%s (+%d lines after the summary)", head, strings.Count(detail, "\n")+1))
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
// outcome of every instance that did not succeed, each message cut to its
// first line, and a row for each hook of the template that ran (before
// first, after last); then, once each, the lines after (an app server's
// log tail) as blocks of their own; and a final line with the run's
// outcome, counts, duration and the process exit code.
func printSummary(w io.Writer, rep *engine.Report, code int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tINSTANCE\tPHASE\tSTEP\tRESULT\tDURATION\tMESSAGE")
	printHooks(tw, rep, engine.HookBefore)
	for _, ir := range rep.Instances {
		inst := ir.Service + "/" + ir.Name
		for _, s := range ir.Steps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ir.Server, inst, s.Phase, s.Name, s.Result, formatDuration(s.Duration), orDefault(headline(s.Message), "-"))
		}
		if ir.Result != engine.ResultOK || len(ir.Steps) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\tinstance\t%s\t%s\t%s\n", ir.Server, inst, ir.Result, formatDuration(ir.Duration), orDefault(instanceMessage(ir), "-"))
		}
	}
	printHooks(tw, rep, engine.HookAfter)
	tw.Flush()
	blocks := 0
	for _, ir := range rep.Instances {
		for _, d := range instanceDetails(ir) {
			fmt.Fprintf(w, "\n%s %s/%s %s:\n%s\n", ir.Server, ir.Service, ir.Name, d.from, indent(d.text))
			blocks++
		}
	}
	if blocks > 0 {
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, outcomeLine(rep, code))
}

// printHooks writes a row for the run's hook called name, if it ran: "-
// - before hook ok 3ms -". An after that failed says that the exit code
// stands.
func printHooks(tw io.Writer, rep *engine.Report, name string) {
	for _, h := range rep.Hooks {
		if h.Name != name {
			continue
		}
		msg := orDefault(headline(h.Error), "-")
		if h.Result != engine.ResultOK && name == engine.HookAfter {
			msg += " (the exit code stands)"
		}
		fmt.Fprintf(tw, "-\t-\t%s\thook\t%s\t%s\t%s\n", h.Name, h.Result, formatDuration(h.Duration), msg)
	}
}

// instanceMessage is why an instance did not succeed, in one line.
func instanceMessage(ir engine.InstanceReport) string {
	if ir.Error == "" && ir.Result == engine.ResultSkipped {
		return "not started"
	}
	return headline(ir.Error)
}

// detail is the lines after the first of a message: where it comes from
// ("each health", or "error" for the instance's), and the text.
type detail struct{ from, text string }

// instanceDetails are the details of the instance's step messages and of
// its error, each once: an instance's error repeats those of the steps
// that failed it.
func instanceDetails(ir engine.InstanceReport) []detail {
	var out []detail
	_, rest, _ := strings.Cut(ir.Error, "\n")
	for _, s := range ir.Steps {
		_, text, ok := strings.Cut(s.Message, "\n")
		if !ok || strings.TrimSpace(text) == "" {
			continue
		}
		rest = strings.Replace(rest, text, "", 1)
		out = append(out, detail{s.Phase + " " + s.Name, strings.TrimRight(text, "\n")})
	}
	if strings.TrimSpace(rest) != "" {
		out = append(out, detail{"error", strings.Trim(rest, "\n")})
	}
	return out
}

// headline is the first line of a message, fit for one table row: the
// lines after it are details (see instanceDetails).
func headline(s string) string {
	first, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.Join(strings.Fields(first), " ")
}

// indent puts two spaces before each line of s.
func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// outcomeLine is the last line of a run's output.
func outcomeLine(rep *engine.Report, code int) string {
	c := rep.Counts()
	parts := []string{
		fmt.Sprintf("%d ok", c.OK),
		fmt.Sprintf("%d failed", c.Failed),
		fmt.Sprintf("%d rolled back", c.RolledBack),
		fmt.Sprintf("%d skipped", c.Skipped),
	}
	if c.Interrupted > 0 {
		parts = append(parts, fmt.Sprintf("%d interrupted", c.Interrupted))
	}
	line := fmt.Sprintf("%s %s: %s in %s; exit %d", rep.Template, rep.Outcome, strings.Join(parts, ", "), formatDuration(rep.Duration), code)
	if rep.Outcome == engine.OutcomeInterrupted && rep.Error != "" {
		line += " (" + headline(rep.Error) + ")"
	}
	return line
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
