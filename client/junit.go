package client

import (
	"encoding/xml"
	"fmt"
	"strings"
	"time"

	"github.com/baepo/baepo/engine"
)

// JUnit XML as Jenkins' junit step reads it: one testsuite per run, named
// after the template, one testcase per instance.
type junitSuite struct {
	XMLName    xml.Name        `xml:"testsuite"`
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"` // server.service
	Name      string        `xml:"name,attr"`      // instance
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",cdata"`
}

type junitText struct {
	Text string `xml:",cdata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr,omitempty"`
}

// junitReport converts a run's report to a JUnit test suite.
func junitReport(rep *engine.Report) junitSuite {
	s := junitSuite{
		Name:      rep.Template,
		Tests:     len(rep.Instances),
		Time:      seconds(rep.Duration),
		Timestamp: rep.Started.UTC().Format("2006-01-02T15:04:05"),
		Properties: []junitProperty{
			{"outcome", rep.Outcome},
			{"exit_code", fmt.Sprint(rep.ExitCode)},
			{"servers", strings.Join(rep.Servers, ",")},
			{"dry_run", fmt.Sprint(rep.DryRun)},
		},
	}
	if rep.Build.Tag != "" {
		s.Properties = append(s.Properties, junitProperty{"build_tag", rep.Build.Tag})
	}
	// A hook is no test case: a failed after changes no exit code, and
	// must not make Jenkins call the build unstable.
	for _, h := range rep.Hooks {
		value := h.Result
		if h.Error != "" {
			value += ": " + headline(h.Error)
		}
		s.Properties = append(s.Properties, junitProperty{"hook_" + h.Name, value})
	}
	for _, ir := range rep.Instances {
		tc := junitCase{
			Classname: ir.Server + "." + ir.Service,
			Name:      ir.Name,
			Time:      seconds(ir.Duration),
		}
		steps := stepList(ir.Steps)
		switch {
		case ir.Result == engine.ResultSkipped:
			s.Skipped++
			tc.Skipped = &junitSkipped{Message: instanceMessage(ir)}
		case ir.Failed():
			// The message is one line; the log tails go in the body, once.
			s.Failures++
			body := steps
			for _, d := range instanceDetails(ir) {
				body += "\n" + d.from + ":\n" + d.text + "\n"
			}
			tc.Failure = &junitFailure{Message: instanceMessage(ir), Type: ir.Result, Body: body}
		default:
			tc.SystemOut = &junitText{steps}
		}
		s.Cases = append(s.Cases, tc)
	}
	return s
}

// writeJUnitReport writes the run's report as JUnit XML.
func writeJUnitReport(path string, rep *engine.Report) error {
	data, err := xml.MarshalIndent(junitReport(rep), "", "  ")
	if err != nil {
		return fmt.Errorf("--junit %s: %w", path, err)
	}
	data = append([]byte(xml.Header), append(data, '\n')...)
	if err := writeFileAtomic(path, data); err != nil {
		return fmt.Errorf("--junit: %w", err)
	}
	return nil
}

// stepList is one line per step: phase, step, result, duration, the first
// line of its message.
func stepList(steps []engine.StepRecord) string {
	var b strings.Builder
	for _, s := range steps {
		fmt.Fprintf(&b, "%s %s%s: %s (%s)", s.Phase, s.Name, formatArgs(s.Args), s.Result, formatDuration(s.Duration))
		if s.Message != "" {
			fmt.Fprintf(&b, " %s", headline(s.Message))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%.3f", d.Seconds())
}
