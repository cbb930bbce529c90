package client

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/baepo/baepo/engine"
	flows "github.com/baepo/baepo/flows-lua"
)

// loadTemplates builds the registry from the built-in templates, then every
// directory of $BAEPO_FLOWS, then every --flows directory, in that order: a
// later template replaces an earlier one of the same name.
func (c *cli) loadTemplates(flowsDirs []string) (*engine.Registry, error) {
	sources := []engine.Source{{Dir: "flows-lua", FS: flows.FS, Builtin: true}}
	for _, dir := range filepath.SplitList(c.app.Getenv("BAEPO_FLOWS")) {
		if dir == "" {
			continue
		}
		if err := checkDir("BAEPO_FLOWS", dir); err != nil {
			return nil, err
		}
		sources = append(sources, engine.Source{Dir: dir, FS: os.DirFS(dir)})
	}
	for _, dir := range flowsDirs {
		if err := checkDir("--flows", dir); err != nil {
			return nil, err
		}
		sources = append(sources, engine.Source{Dir: dir, FS: os.DirFS(dir)})
	}
	return engine.Load(engine.LoadOptions{Logger: c.logger, Reserved: reservedParams()}, sources...)
}

func checkDir(origin, dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return usagef("%s %s: no such directory (give a directory of *.lua templates)", origin, dir)
	case err != nil:
		return usagef("%s %s: %v", origin, dir, err)
	case !fi.IsDir():
		return usagef("%s %s: not a directory (give a directory of *.lua templates)", origin, dir)
	}
	return nil
}

func (c *cli) templatesCommand() *cobra.Command {
	var flowsDirs []string
	cmd := &cobra.Command{
		Use:   "templates [--flows DIR]",
		Short: "List every flow template: name, description, params",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg, err := c.loadTemplates(flowsDirs)
			if err != nil {
				return err
			}
			printTemplates(c.app.Stdout, reg.Templates())
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&flowsDirs, "flows", nil, "load the templates of `DIR` too (repeatable)")
	return cmd
}

func (c *cli) validateCommand() *cobra.Command {
	var flowsDirs []string
	cmd := &cobra.Command{
		Use:   "validate [--flows DIR]",
		Short: "Compile every template; print each problem as file:line: message",
		Long: `validate loads the built-in templates, those of $BAEPO_FLOWS and those of
every --flows directory, as a run would. It prints "ok: N templates", or each
problem as "file:line: message" on stderr and exits 2.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg, err := c.loadTemplates(flowsDirs)
			var le *engine.LoadError
			if errors.As(err, &le) {
				for _, p := range le.Problems {
					fmt.Fprintln(c.app.Stderr, p)
				}
				return usagef("validate: %d %s in templates", len(le.Problems), plural(len(le.Problems), "problem", "problems"))
			}
			if err != nil {
				return err
			}
			n := len(reg.Names())
			fmt.Fprintf(c.app.Stdout, "ok: %d %s\n", n, plural(n, "template", "templates"))
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&flowsDirs, "flows", nil, "load the templates of `DIR` too (repeatable)")
	return cmd
}

// printTemplates writes every template's name and description, and under
// it its params, aligned.
func printTemplates(w io.Writer, templates []*engine.Template) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range templates {
		desc := t.Description
		if desc == "" {
			desc = "(no description)"
		}
		fmt.Fprintf(tw, "%s\t%s\n", t.Name, desc)
		writeParams(tw, t.Params)
	}
	tw.Flush()
}

// writeParams writes one "  --name TYPE<tab>doc (required)" line per param.
func writeParams(tw *tabwriter.Writer, params []engine.Param) {
	for _, p := range params {
		fmt.Fprintf(tw, "  %s\t%s%s\n", paramFlag(p), p.Doc, paramNote(p))
	}
}

// paramFlag shows a param as a flag with a value placeholder: --service
// STRING, --drain[=BOOL].
func paramFlag(p engine.Param) string {
	if p.Type == engine.TypeBool {
		return "--" + p.Name + "[=BOOL]"
	}
	return "--" + p.Name + " " + strings.ToUpper(p.Type)
}

// paramNote says whether a param is required or what its default is.
func paramNote(p engine.Param) string {
	note := ""
	if len(p.Values) > 0 {
		note = " (one of " + strings.Join(p.Values, ", ") + ")"
	}
	switch {
	case p.Required:
		return note + " (required)"
	case p.Default != nil:
		return note + fmt.Sprintf(" (default %v)", formatArg(p.Default))
	}
	return note
}

// printTemplateHelp is `baepo run TEMPLATE --help`: what the template does,
// its params and the flags every run takes.
func printTemplateHelp(w io.Writer, t *engine.Template, common string) {
	fmt.Fprintf(w, "%s: %s\n  (%s)\n\n", t.Name, orDefault(t.Description, "no description"), t.File)
	usage := "baepo run " + t.Name + " --server NAMES"
	for _, p := range t.Params {
		if p.Required {
			usage += " " + paramFlag(p)
		}
	}
	fmt.Fprintf(w, "Usage:\n  %s [params] [flags]\n\n", usage)
	if len(t.Params) > 0 {
		fmt.Fprintln(w, "Params:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		writeParams(tw, t.Params)
		tw.Flush()
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, "Params: none\n\n")
	}
	fmt.Fprintf(w, "Strategy: batch %s, max failures %s, canary %s (override with --batch, --max-failures, --canary)\n\n",
		orDefault(t.Batch.String(), "1"), orDefault(t.MaxFailures.String(), "0"), orDefault(t.Canary.String(), "0"))
	fmt.Fprintf(w, "Flags:\n%s", common)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
