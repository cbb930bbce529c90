package client

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/baepo/baepo/engine"
	"github.com/baepo/baepo/engine/step"
)

func (c *cli) statusCommand() *cobra.Command {
	var f runFlags
	var service string
	cmd := &cobra.Command{
		Use:   "status --server NAMES [--service S]",
		Short: "Show the instances of servers: running?, release, health (changes nothing)",
		Long: `status runs the "status" template, which only reads: for every instance of
--service (of every service when omitted) it shows whether it runs, its pid,
its current and previous release, its health and when that was checked.

It exits 0 when every instance runs and its current release passed its
health check since it last started; 3 when one does not (someone must
look); otherwise, when an instance's status could not be read, 4 if its
agent could not be reached and 2 if the agent refused (a plugin whose pin
does not match, say).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg, err := c.loadTemplates(f.flows)
			if err != nil {
				return err
			}
			t, err := reg.Get("status")
			if err != nil {
				return err
			}
			raw := map[string]string{}
			if service != "" {
				raw["service"] = service
			}
			return c.execute(cmd.Context(), t, f, raw, printStatus)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", "", "servers and groups of the inventory: `NAMES`, comma separated (required)")
	fl.StringVar(&service, "service", "", "`SERVICE` on the agents (default: every service)")
	fl.StringVar(&f.inventory, "inventory", "", "inventory `FILE` (default $BAEPO_INVENTORY, else ./inventory.yaml)")
	fl.StringArrayVar(&f.flows, "flows", nil, "load the templates of `DIR` too (repeatable)")
	fl.StringVar(&f.reportJSON, "report-json", "", "write the run's report, with each instance's status, as JSON to `FILE`")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Minute, "limit for the whole status run")
	return cmd
}

// printStatus writes a row per instance with what its status step
// returned, a line for each instance whose status could not be read, and a
// last line with how many instances run and are healthy, and the exit code.
func printStatus(w io.Writer, rep *engine.Report, code int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tRUNNING\tPID\tRELEASE\tPREVIOUS\tHEALTH\tCHECKED AT")
	var unread []engine.InstanceReport
	var problems []string
	ok := 0
	for _, ir := range rep.Instances {
		if ir.Result == engine.ResultOK {
			ok++
		}
		out := lastStatus(ir)
		if out == nil {
			unread = append(unread, ir)
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\tunknown\t-\n", ir.Instance)
			continue
		}
		running := "no"
		if out["running"] == true {
			running = "yes"
		}
		field := func(k string) string {
			if v, ok := out[k]; ok && v != "" {
				return headline(formatArg(v))
			}
			return "-"
		}
		release := field("release")
		if p, _ := out["problem"].(string); p != "" {
			problems = append(problems, fmt.Sprintf("%s: PROBLEM: %s", ir.Instance, p))
			if release == "-" {
				release = "broken" // not "no release": the line below says what
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ir.Instance, running, field("pid"), release, field("previous"), field("health"), field("health_at"))
	}
	tw.Flush()
	for _, p := range problems {
		fmt.Fprintln(w, p)
	}
	for _, ir := range unread {
		fmt.Fprintf(w, "%s: %s\n", ir.Instance, instanceMessage(ir))
	}
	fmt.Fprintf(w, "%s: %d %s, %d running and healthy, %d not; exit %d\n", rep.Template, len(rep.Instances), plural(len(rep.Instances), "instance", "instances"), ok, len(rep.Instances)-ok, code)
}

// lastStatus is the output of the last status step of an instance that
// returned one; nil when none did.
func lastStatus(ir engine.InstanceReport) map[string]any {
	for i := len(ir.Steps) - 1; i >= 0; i-- {
		if s := ir.Steps[i]; s.Name == step.Status && s.Output != nil {
			return s.Output
		}
	}
	return nil
}
