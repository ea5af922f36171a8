// Package report writes benchmark and experiment results: JSON for machines,
// Markdown for people and PNG plots (gonum.org/v1/plot).
package report

import (
	"fmt"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Line is one named series of (x, y) points.
type Line struct {
	Name string
	X, Y []float64
}

// Chart is a line chart to render as PNG.
type Chart struct {
	Title, XLabel, YLabel string
	Lines                 []Line
	// LogY draws the y axis on a log scale (latencies); values <= 0 are dropped.
	LogY bool
	// Identity adds a dashed y = x line (offered vs achieved).
	Identity bool
	// HLines are horizontal reference lines (objectives), by name.
	HLines map[string]float64
}

// Save renders the chart to a PNG file.
func (c Chart) Save(path string) error {
	p := plot.New()
	p.Title.Text = c.Title
	p.X.Label.Text = c.XLabel
	p.Y.Label.Text = c.YLabel
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	maxX := 0.0
	var args []any
	for _, l := range c.Lines {
		xys := plotter.XYs{}
		for i := range l.X {
			if c.LogY && l.Y[i] <= 0 {
				continue
			}
			if math.IsNaN(l.Y[i]) || math.IsInf(l.Y[i], 0) {
				continue
			}
			xys = append(xys, plotter.XY{X: l.X[i], Y: l.Y[i]})
			maxX = math.Max(maxX, l.X[i])
		}
		if len(xys) == 0 {
			continue
		}
		args = append(args, l.Name, xys)
	}
	if len(args) > 0 {
		if err := plotutil.AddLinePoints(p, args...); err != nil {
			return fmt.Errorf("plot %s: %w", c.Title, err)
		}
	}
	if c.Identity && maxX > 0 {
		id, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: maxX, Y: maxX}})
		if err != nil {
			return err
		}
		id.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
		p.Add(id)
		p.Legend.Add("offered (ideal)", id)
	}
	for name, y := range c.HLines {
		if maxX == 0 {
			break
		}
		h, err := plotter.NewLine(plotter.XYs{{X: 0, Y: y}, {X: maxX, Y: y}})
		if err != nil {
			return err
		}
		h.Dashes = []vg.Length{vg.Points(2), vg.Points(3)}
		h.Color = plotutil.Color(6)
		p.Add(h)
		p.Legend.Add(name, h)
	}
	if c.LogY && len(args) > 0 {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	if err := p.Save(20*vg.Centimeter, 12*vg.Centimeter, path); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}
