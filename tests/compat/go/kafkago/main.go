// The kafka-go scenario programs of the compatibility matrix, built as one binary:
// `kafkago-scenarios <N_stem> <bootstrap> <topic-prefix>` runs the scenario of file N_stem.go.
// Each prints `STEP <name>` before each step and `OK` at the end; a failed check panics, and
// main prints the error and exits 1. Every wait is bounded, and so is the whole program
// (QUILL_SCENARIO_TIMEOUT_MS).
package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"time"
)

var (
	bootstrap string
	prefix    string
	scenarios = map[string]func(){}
)

func register(name string, scenario func()) { scenarios[name] = scenario }

func main() {
	if len(os.Args) < 4 || scenarios[os.Args[1]] == nil {
		names := make([]string, 0, len(scenarios))
		for name := range scenarios {
			names = append(names, name)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "usage: %s <scenario> <bootstrap> <topic-prefix>; scenarios: %v\n", os.Args[0], names)
		os.Exit(2)
	}
	bootstrap, prefix = os.Args[2], os.Args[3]
	timeoutMs, err := strconv.Atoi(os.Getenv("QUILL_SCENARIO_TIMEOUT_MS"))
	if err != nil || timeoutMs <= 0 {
		timeoutMs = 90000
	}
	time.AfterFunc(time.Duration(timeoutMs)*time.Millisecond, func() {
		fmt.Fprintf(os.Stderr, "scenario timed out after %d ms\n", timeoutMs)
		os.Exit(1)
	})
	defer func() {
		if failure := recover(); failure != nil {
			fmt.Fprintf(os.Stderr, "FAILED: %v\n%s", failure, debug.Stack())
			os.Exit(1)
		}
	}()
	scenarios[os.Args[1]]()
	fmt.Println("OK")
	// Skip deferred client shutdowns: background goroutines must not turn a pass into a hang.
	os.Exit(0)
}
