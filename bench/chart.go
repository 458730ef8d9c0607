package main

import (
	"encoding/json"
	"fmt"
	"html"
	"math"
	"os"
	"slices"
	"strings"
)

// renderChart draws results.json as an SVG: per scenario, each server's
// requests/s as a ratio to nginx's, on a log scale centred on 1x.
func renderChart(in, out string) error {
	b, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var data struct {
		Date    string
		Results []jsonResult
	}
	if err := json.Unmarshal(b, &data); err != nil {
		return err
	}
	var scenarios, servers []string
	rps := map[[2]string]float64{}
	for _, r := range data.Results {
		if !slices.Contains(scenarios, r.Scenario) {
			scenarios = append(scenarios, r.Scenario)
		}
		if !slices.Contains(servers, r.Server) {
			servers = append(servers, r.Server)
		}
		rps[[2]string{r.Scenario, r.Server}] = r.RPS
	}
	colors := []string{"#d9480f", "#1c7ed6", "#2f9e44", "#7048e8", "#868e96", "#f08c00"}
	const (
		left, labelW, plotW = 10, 250, 560
		barH, gap, top      = 11, 14, 60
		maxLog              = 6 // 1/64x .. 64x
	)
	x := func(ratio float64) float64 {
		l := math.Max(-maxLog, math.Min(maxLog, math.Log2(ratio)))
		return left + labelW + plotW/2 + l/maxLog*plotW/2
	}
	height := top + len(scenarios)*(len(servers)*barH+gap) + 30
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", left+labelW+plotW+80, height)
	fmt.Fprintf(&s, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&s, `<text x="%d" y="18" font-size="14" font-weight="bold">Requests/s relative to nginx (log scale), same run, %s</text>`+"\n", left, html.EscapeString(data.Date))
	for i, srv := range servers {
		fmt.Fprintf(&s, `<rect x="%d" y="28" width="10" height="10" fill="%s"/><text x="%d" y="37">%s</text>`+"\n", left+i*120, colors[i%len(colors)], left+i*120+14, html.EscapeString(srv))
	}
	for p := -maxLog; p <= maxLog; p += 2 {
		r := math.Pow(2, float64(p))
		label := fmt.Sprintf("%gx", r)
		if r < 1 {
			label = fmt.Sprintf("1/%gx", 1/r)
		}
		fmt.Fprintf(&s, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/><text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n",
			x(r), top-8, x(r), height-25, map[bool]string{true: "#333", false: "#ddd"}[p == 0], x(r), height-10, label)
	}
	y := top
	for _, sc := range scenarios {
		base := rps[[2]string{sc, "nginx"}]
		fmt.Fprintf(&s, `<text x="%d" y="%d">%s</text>`+"\n", left, y+len(servers)*barH/2+4, html.EscapeString(sc))
		for i, srv := range servers {
			v, ok := rps[[2]string{sc, srv}]
			if ok && base > 0 && v > 0 {
				r := v / base
				x0, x1 := x(1), x(r)
				if x1 < x0 {
					x0, x1 = x1, x0
				}
				fmt.Fprintf(&s, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s %s: %.0f req/s, %.2fx</title></rect>`+"\n",
					x0, y, math.Max(x1-x0, 1), barH-2, colors[i%len(colors)], html.EscapeString(srv), html.EscapeString(sc), v, r)
				fmt.Fprintf(&s, `<text x="%.1f" y="%d" font-size="9" fill="#333">%.2fx</text>`+"\n", x1+3, y+barH-3, r)
			}
			y += barH
		}
		y += gap
	}
	s.WriteString("</svg>\n")
	return os.WriteFile(out, []byte(s.String()), 0o644)
}
