// Command report joins the JSON lines the benchmark programs print (files named on the
// command line) into Markdown tables: wall and CPU time per operation for every
// implementation, and the peer/litepool ratios (above 1.0: litepool faster / less CPU).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
)

type result struct {
	Impl   string  `json:"impl"`
	Case   string  `json:"case"`
	Ops    int     `json:"ops"`
	WallNs float64 `json:"wall_ns"`
	CPUNs  float64 `json:"cpu_ns"`
	FDs    *int    `json:"fds"`
	Error  string  `json:"error"`
	Ticks  int     `json:"ticks"`
}

var impls = []string{"mattn", "modernc", "litepool", "litepool-native"}

var heads = map[string]string{
	"mattn": "mattn", "modernc": "modernc", "litepool": "litepool database/sql",
	"litepool-native": "litepool native",
}

// ratios: (peer, litepool side) pairs shown, peer/litepool.
var ratios = [][2]string{{"mattn", "litepool"}, {"mattn", "litepool-native"}, {"modernc", "litepool"}, {"modernc", "litepool-native"}}

func fmtNs(ns float64) string {
	switch {
	case ns <= 0:
		return "—"
	case ns < 1e4:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	case ns < 1e6:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	}
}

func main() {
	byCase := map[string]map[string]result{}
	var order []string
	var fds, errs []result
	for _, name := range os.Args[1:] {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var r result
			if json.Unmarshal(sc.Bytes(), &r) != nil || r.Impl == "" {
				continue
			}
			if r.Error != "" {
				errs = append(errs, r)
				continue
			}
			if r.FDs != nil { // the warm-up's line comes first: keep the measured run's
				fds = slices.DeleteFunc(fds, func(o result) bool { return o.Impl == r.Impl })
				fds = append(fds, r)
				continue
			}
			if byCase[r.Case] == nil {
				byCase[r.Case] = map[string]result{}
				order = append(order, r.Case)
			}
			byCase[r.Case][r.Impl] = r
		}
		f.Close()
	}
	table := func(title string, val func(result) float64) {
		fmt.Printf("%s\n\n| case |", title)
		for _, i := range impls {
			fmt.Printf(" %s |", heads[i])
		}
		for _, p := range ratios {
			fmt.Printf(" %s / %s |", p[0], heads[p[1]])
		}
		fmt.Printf("\n| :-- |%s\n", strings.Repeat(" --: |", len(impls)+len(ratios)))
		for _, c := range order {
			fmt.Printf("| %s |", c)
			for _, i := range impls {
				fmt.Printf(" %s |", fmtNs(val(byCase[c][i])))
			}
			for _, p := range ratios {
				a, b := val(byCase[c][p[0]]), val(byCase[c][p[1]])
				if a > 0 && b > 0 {
					fmt.Printf(" %.2f |", a/b)
				} else {
					fmt.Print(" — |")
				}
			}
			fmt.Println()
		}
		fmt.Println()
	}
	table("Wall time per operation (× = peer / litepool: above 1.0 litepool is faster)",
		func(r result) float64 { return r.WallNs })
	table("Process CPU time per operation, all threads (× above 1.0: litepool uses less CPU)",
		func(r result) float64 { return r.CPUNs })
	if len(errs) > 0 {
		fmt.Print("Cases that failed (— in the tables above):\n\n")
		for _, r := range errs {
			fmt.Printf("- %s, %s: %s\n", heads[r.Impl], r.Case, r.Error)
		}
		fmt.Println()
	}
	if len(fds) > 0 {
		fmt.Print("database/sql `sql.Open` + one query + `Close` per tick: FDs the process holds after the last tick beyond those before the first (/proc/self/fd)\n\n")
		fmt.Println("| driver | ticks | FDs at the end | wall per tick |")
		fmt.Println("| :-- | --: | --: | --: |")
		for _, r := range fds {
			wall := byCase["open + query + close per tick"][r.Impl].WallNs
			fmt.Printf("| %s | %d | %d | %s |\n", r.Impl, r.Ticks, *r.FDs, fmtNs(wall))
		}
		fmt.Println()
	}
}
