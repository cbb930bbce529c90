package client

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func (c *cli) historyCommand() *cobra.Command {
	var server, service, inventory string
	var limit int
	cmd := &cobra.Command{
		Use:   "history --server NAMES [--service S] [--limit N]",
		Short: "Show who deployed what, when, with what result, as the agents recorded it",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" {
				return usagef("--server is required (a server or group name from inventory.yaml)")
			}
			if limit < 1 {
				return usagef("--limit %d: give a number of entries of at least 1", limit)
			}
			inv, err := LoadInventory(c.inventoryPath(inventory))
			if err != nil {
				return err
			}
			servers, err := inv.Resolve(server)
			if err != nil {
				return err
			}
			entries, err := fetchHistory(cmd.Context(), newAgents(inv, c.app.Getenv, c.logger), servers, service, limit)
			if err != nil {
				return err
			}
			printHistory(c.app.Stdout, entries)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&server, "server", "", "servers and groups of the inventory: `NAMES`, comma separated (required)")
	fl.StringVar(&service, "service", "", "only this `SERVICE` (default: every service)")
	fl.IntVar(&limit, "limit", 20, "show the newest `N` entries")
	fl.StringVar(&inventory, "inventory", "", "inventory `FILE` (default $BAEPO_INVENTORY, else ./inventory.yaml)")
	return cmd
}

// printHistory writes history entries as an aligned table.
func printHistory(w io.Writer, entries []HistoryEntry) {
	if len(entries) == 0 {
		fmt.Fprintln(w, "no history")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSERVER\tSERVICE\tINSTANCE\tSTEP\tRESULT\tDURATION\tBUILD")
	for _, e := range entries {
		build := e.Build.Tag
		switch {
		case build != "":
		case e.Build.Job != "":
			build = e.Build.Job + "#" + e.Build.Number
		default:
			build = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			e.Time.Local().Format("2006-01-02 15:04:05"), e.Server, e.Service, e.Instance,
			e.Step, e.Result, formatDuration(e.Duration), build)
	}
	tw.Flush()
}
