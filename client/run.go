package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/baepo/baepo/engine"
)

// runFlags are the flags of `baepo run` that every template shares; a
// template's params are added next to them.
type runFlags struct {
	server      string
	inventory   string
	flows       []string
	batch       engine.Count
	maxFailures engine.Count
	canary      engine.Count
	dryRun      bool
	reportJSON  string
	junit       string
	timeout     time.Duration
	help        bool
}

// commonFlags lists the shared flags in unknown-flag errors.
const commonFlags = "--server, --inventory, --flows, --batch, --max-failures, --canary, --dry-run, --report-json, --junit, --timeout"

func (f *runFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.server, "server", "", "servers and groups of the inventory: `NAMES`, comma separated (required)")
	fs.StringVar(&f.inventory, "inventory", "", "inventory `FILE` (default $BAEPO_INVENTORY, else ./inventory.yaml)")
	fs.StringArrayVar(&f.flows, "flows", nil, "load the templates of `DIR` too (repeatable); they replace built-ins of the same name")
	fs.Var(countValue{&f.batch, engine.ParseBatch}, "batch", "instances per batch: `N` or a percentage like 25% (default: the template's)")
	fs.Var(countValue{&f.maxFailures, engine.ParseMaxFailures}, "max-failures", "failed instances allowed before no new batch starts: `N` or a percentage (default: the template's)")
	fs.Var(countValue{&f.canary, engine.ParseCanary}, "canary", "instances that run first, in batches of their own; one that fails stops the run: `N` or a percentage (default: the template's, else 0)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print the plan: batches, each instance's steps, its release now and what it would install; change nothing")
	fs.StringVar(&f.reportJSON, "report-json", "", "write the run's report as JSON to `FILE`")
	fs.StringVar(&f.junit, "junit", "", "write the run's report as JUnit XML to `FILE`, one testcase per instance")
	fs.DurationVar(&f.timeout, "timeout", engine.DefaultTimeout, "limit for the whole run; a flow still running is stopped")
	fs.BoolVarP(&f.help, "help", "h", false, "show the template's description, params and these flags")
}

// reservedParams are the names a template's params cannot have: the
// shared flags of run, spelled with - and with _ (a flag set of run takes
// them as the same).
func reservedParams() map[string]string {
	fs := newFlagSet("run")
	new(runFlags).register(fs)
	reserved := map[string]string{}
	fs.VisitAll(func(fl *pflag.Flag) {
		reserved[fl.Name] = "a flag of `baepo run`"
		reserved[strings.ReplaceAll(fl.Name, "-", "_")] = "a flag of `baepo run`"
	})
	return reserved
}

// newFlagSet returns a flag set that reports errors instead of printing
// them, and takes "_" and "-" in flag names as the same.
func newFlagSet(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
	})
	return fs
}

func (c *cli) runCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "run TEMPLATE --server NAMES [--PARAM VALUE ...] [flags]",
		Short: "Run a flow template on the instances of servers of the inventory",
		Long: `run runs the flow template TEMPLATE on the instances of the servers (and
groups) that --server names. The template's params are flags: see
'baepo run TEMPLATE --help' for them, and 'baepo templates' for every template.

Flags:
` + commonUsage(),
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.run(cmd, args)
		},
	}
}

// commonUsage is the help text of the shared flags of run.
func commonUsage() string {
	fs := newFlagSet("run")
	new(runFlags).register(fs)
	return fs.FlagUsages()
}

// run parses `baepo run`'s command line in two passes: the first finds the
// template name and --flows, the second parses the template's params as
// flags next to the shared ones.
func (c *cli) run(cmd *cobra.Command, args []string) error {
	var f runFlags
	pre := newFlagSet("run")
	f.register(pre)
	pre.ParseErrorsAllowlist.UnknownFlagsHandling = pflag.IgnoreUnknownFlag
	if err := pre.Parse(args); err != nil {
		return usagef("run: %v (see baepo run --help)", err)
	}
	reg, err := c.loadTemplates(f.flows)
	if err != nil {
		return err
	}
	if pre.NArg() == 0 {
		if f.help {
			if err := cmd.Help(); err != nil {
				return err
			}
			fmt.Fprintf(c.app.Stdout, "\nTemplates: %s\n", strings.Join(reg.Names(), ", "))
			return nil
		}
		return usagef("run: which template? baepo run TEMPLATE --server NAMES ... (templates: %s)", strings.Join(reg.Names(), ", "))
	}
	t, err := reg.Get(pre.Arg(0))
	if err != nil {
		return err
	}

	f = runFlags{}
	fs := newFlagSet("run " + t.Name)
	f.register(fs)
	params := map[string]string{} // normalized flag name → param name
	for _, p := range t.Params {
		if fs.Lookup(p.Name) != nil {
			return usagef("%s: param %s clashes with another flag of run (rename it in %s)", t.Name, p.Name, t.File)
		}
		fl := fs.VarPF(newStringValue(), p.Name, "", p.Doc)
		if p.Type == engine.TypeBool {
			fl.NoOptDefVal = "true"
		}
		params[fl.Name] = p.Name
	}
	if err := fs.Parse(args); err != nil {
		return runFlagError(t, err)
	}
	if f.help {
		printTemplateHelp(c.app.Stdout, t, commonUsage())
		return nil
	}
	switch {
	case fs.Arg(0) != t.Name:
		return usagef("run: put the template name first: baepo run %s --server NAMES ...", t.Name)
	case fs.NArg() > 1:
		return usagef("run %s: unexpected argument %q: params are flags (%s; a bool param takes --name or --name=false)", t.Name, fs.Arg(1), t.ParamNames())
	}
	raw := map[string]string{}
	fs.Visit(func(fl *pflag.Flag) {
		if name, ok := params[fl.Name]; ok {
			raw[name] = fl.Value.String()
		}
	})
	return c.execute(cmd.Context(), t, f, raw, printSummary)
}

// runFlagError turns a flag parsing error into a usage error that lists
// what run accepts.
func runFlagError(t *engine.Template, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "unknown flag: "); ok {
		return usagef("run %s: unknown flag %s (params of %s: %s; flags of run: %s)", t.Name, name, t.Name, t.ParamNames(), commonFlags)
	}
	if strings.HasPrefix(msg, "unknown shorthand flag") {
		return usagef("run %s: %s (params of %s: %s; flags of run: %s)", t.Name, msg, t.Name, t.ParamNames(), commonFlags)
	}
	return usagef("run %s: %s (see baepo run %s --help)", t.Name, msg, t.Name)
}

// execute runs template t with the raw param values the user set, then
// prints the dry-run plan or what show makes of the report (the summary,
// baepo status's table) and writes the reports.
func (c *cli) execute(ctx context.Context, t *engine.Template, f runFlags, raw map[string]string, show func(io.Writer, *engine.Report, int)) error {
	params, err := t.ParseParams(raw) // before the inventory: the first thing to fix
	if err != nil {
		return err
	}
	if f.server == "" {
		return usagef("--server is required (a server or group name from inventory.yaml)")
	}
	if f.timeout <= 0 {
		return usagef("--timeout %s: give a positive duration such as 30m", f.timeout)
	}
	for _, r := range []struct{ flag, path string }{{"--report-json", f.reportJSON}, {"--junit", f.junit}} {
		if err := checkReportPath(r.flag, r.path); err != nil {
			return err
		}
	}
	inv, err := LoadInventory(c.inventoryPath(f.inventory))
	if err != nil {
		return err
	}
	servers, err := inv.Resolve(f.server)
	if err != nil {
		return err
	}
	flowMemory, err := c.flowMemory()
	if err != nil {
		return err
	}
	if c.app.NewTarget == nil {
		return errors.New("internal error: App.NewTarget is nil")
	}
	target, err := c.app.NewTarget(inv, c.app.Getenv, c.logger)
	if err != nil {
		return err
	}
	// A run stopped by a signal, or by a panic, still ends its leases and
	// tells the agents how it ended, within the grace Jenkins gives.
	var rep *engine.Report
	if e, ok := target.(runEnder); ok {
		defer func() {
			endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			e.End(endCtx, rep)
			cancel()
		}()
	}
	rep, err = t.Run(ctx, params, engine.Options{
		Servers:     servers,
		Batch:       f.batch,
		MaxFailures: f.maxFailures,
		Canary:      f.canary,
		Timeout:     f.timeout,
		FlowMemory:  flowMemory,
		DryRun:      f.dryRun,
		Build:       jenkinsBuild(c.app.Getenv),
		Target:      target,
		Logger:      c.logger,
	})
	if err != nil {
		return err
	}
	// The report's exit code is the process's: a run stopped by a signal
	// has 130 or 143 in it already (the signal's cause says so), and one
	// that ended before a signal came is not changed by it.
	code := rep.ExitCode
	if f.dryRun {
		printPlan(c.app.Stdout, rep, code, fileDigests())
	} else {
		show(c.app.Stdout, rep, code)
	}
	// A report that cannot be written does not change what happened on the
	// servers: the run's exit code stands, the error is printed.
	if f.reportJSON != "" {
		if err := writeJSONReport(f.reportJSON, rep); err != nil {
			c.printError(err)
		}
	}
	if f.junit != "" {
		if err := writeJUnitReport(f.junit, rep); err != nil {
			c.printError(err)
		}
	}
	c.code, c.reported = code, true
	return nil
}

// minFlowMemory is the least BAEPO_FLOW_MEMORY takes: the client's own
// heap counts.
const minFlowMemory = 64 << 20

// flowMemory is the flow memory limit, $BAEPO_FLOW_MEMORY or
// engine.DefaultFlowMemory. Unless GOMEMLIMIT says otherwise, the Go
// runtime's soft memory limit is set 256 MiB above it, so that the
// collector works harder before the flows reach it rather than the
// process growing past it.
func (c *cli) flowMemory() (int64, error) {
	n := int64(engine.DefaultFlowMemory)
	if v := c.app.Getenv("BAEPO_FLOW_MEMORY"); v != "" {
		var err error
		if n, err = parseSize(v); err != nil || n < minFlowMemory {
			return 0, usagef("BAEPO_FLOW_MEMORY=%s: give a size of at least 64MiB, such as 512MiB or 2GiB", v)
		}
	}
	if c.app.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(n + 256<<20)
	}
	return n, nil
}

// parseSize reads a size in bytes: a number, with KiB, MiB or GiB (or K, M,
// G, meaning the same) after it.
func parseSize(s string) (int64, error) {
	num, unit := strings.TrimSpace(s), int64(1)
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, unit = strings.TrimSpace(rest), u.n
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/unit {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return n * unit, nil
}

// runEnder is a target that hears when a run is over, with its report (nil
// when the run stopped before its first step): [Agents] ends the run's
// leases and records its end on the agents.
type runEnder interface {
	End(ctx context.Context, rep *engine.Report)
}

// jenkinsBuild is the Jenkins build that runs baepo, from BUILD_TAG,
// BUILD_URL, JOB_NAME and BUILD_NUMBER; empty outside Jenkins.
func jenkinsBuild(getenv func(string) string) engine.Build {
	return engine.Build{
		Tag:    getenv("BUILD_TAG"),
		URL:    getenv("BUILD_URL"),
		Job:    getenv("JOB_NAME"),
		Number: getenv("BUILD_NUMBER"),
	}
}

// inventoryPath is --inventory, else $BAEPO_INVENTORY, else ./inventory.yaml.
func (c *cli) inventoryPath(flag string) string {
	if flag != "" {
		return flag
	}
	if env := c.app.Getenv("BAEPO_INVENTORY"); env != "" {
		return env
	}
	return "./inventory.yaml"
}

// checkReportPath fails before a run when a report could not be written
// after it.
func checkReportPath(flag, path string) error {
	if path == "" {
		return nil
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return usagef("%s %s: directory %s does not exist (create it first)", flag, path, dir)
	}
	return nil
}

// countValue is a pflag.Value that parses --batch, --max-failures or --canary when
// the flag is set, so a mistyped count is a usage error before anything
// else runs.
type countValue struct {
	c     *engine.Count
	parse func(string) (engine.Count, error)
}

func (v countValue) String() string { return v.c.String() }
func (v countValue) Type() string   { return "string" }
func (v countValue) Set(s string) (err error) {
	*v.c, err = v.parse(s)
	return err
}

// stringValue is a pflag.Value that keeps the raw text: the engine parses
// and checks params against their declared types.
type stringValue string

func newStringValue() *stringValue        { return new(stringValue) }
func (s *stringValue) String() string     { return string(*s) }
func (s *stringValue) Set(v string) error { *s = stringValue(v); return nil }
func (s *stringValue) Type() string       { return "string" }
