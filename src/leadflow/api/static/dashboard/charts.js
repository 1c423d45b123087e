// Hand-drawn SVG charts: axes, units, labels and <title> tooltips. Sizes are in viewBox units so
// the charts scale with their container.

const NS = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) el.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const plain = (value) => {
  const n = Number(value);
  if (Math.abs(n) >= 1000) return n.toLocaleString(undefined, { maximumFractionDigits: 0 });
  return n.toLocaleString(undefined, { maximumFractionDigits: 2 });
};

/** Round the top of an axis up to 1, 2 or 5 times a power of ten. */
function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

function frame({ title, width, height }) {
  const svg = s("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "chart",
    role: "img",
    "aria-label": title,
    preserveAspectRatio: "xMidYMid meet",
  });
  svg.appendChild(s("title", {}, title));
  return svg;
}

function yAxis(svg, { max, left, top, bottom, right, unit, format }) {
  const ticks = 4;
  for (let i = 0; i <= ticks; i++) {
    const value = (max * i) / ticks;
    const y = bottom - ((bottom - top) * i) / ticks;
    svg.appendChild(s("line", { x1: left, x2: right, y1: y, y2: y, class: "grid" }));
    svg.appendChild(
      s("text", { x: left - 6, y: y + 4, class: "tick", "text-anchor": "end" }, format(value)),
    );
  }
  if (unit) svg.appendChild(s("text", { x: left, y: top - 8, class: "unit" }, unit));
  svg.appendChild(s("line", { x1: left, x2: left, y1: top, y2: bottom, class: "axis" }));
  svg.appendChild(s("line", { x1: left, x2: right, y1: bottom, y2: bottom, class: "axis" }));
}

/** A time series by day: `series` = [{name, points: [{x: "2026-11-29", y: 3}]}]. */
export function lineChart({ title, series, unit = "", format = plain, width = 900, height = 240 }) {
  const svg = frame({ title, width, height });
  const left = 56;
  const right = width - 12;
  const top = 24;
  const bottom = height - 36;
  const xs = [...new Set(series.flatMap((line) => line.points.map((p) => p.x)))].sort();
  const maxY = niceMax(Math.max(0, ...series.flatMap((line) => line.points.map((p) => Number(p.y)))));
  yAxis(svg, { max: maxY, left, top, bottom, right, unit, format });
  if (!xs.length) {
    svg.appendChild(
      s("text", { x: (left + right) / 2, y: (top + bottom) / 2, class: "no-data", "text-anchor": "middle" }, "No data yet"),
    );
    return svg;
  }
  const xAt = (x) => (xs.length === 1 ? (left + right) / 2 : left + ((right - left) * xs.indexOf(x)) / (xs.length - 1));
  const yAt = (y) => bottom - ((bottom - top) * Number(y)) / maxY;
  const labelEvery = Math.max(1, Math.ceil(xs.length / 6));
  xs.forEach((x, i) => {
    if ((i % labelEvery === 0 && xs.length - 1 - i >= labelEvery / 2) || i === xs.length - 1) {
      const anchor = xs.length > 1 && i === 0 ? "start" : xs.length > 1 && i === xs.length - 1 ? "end" : "middle";
      svg.appendChild(s("text", { x: xAt(x), y: bottom + 16, class: "tick", "text-anchor": anchor }, shortDay(x)));
    }
  });
  series.forEach((line, index) => {
    const points = [...line.points].sort((a, b) => (a.x < b.x ? -1 : 1));
    const path = points.map((p, i) => `${i ? "L" : "M"}${xAt(p.x).toFixed(1)},${yAt(p.y).toFixed(1)}`).join(" ");
    svg.appendChild(s("path", { d: path, class: `line series-${index}` }));
    for (const p of points) {
      svg.appendChild(
        s("circle", { cx: xAt(p.x), cy: yAt(p.y), r: 3.5, class: `dot series-${index}` },
          s("title", {}, `${line.name} · ${p.x}: ${format(p.y)}${unit ? ` ${unit}` : ""}`)),
      );
    }
  });
  if (series.length > 1) {
    series.forEach((line, index) => {
      const x = left + 8 + index * 130;
      svg.appendChild(s("rect", { x, y: height - 12, width: 10, height: 10, class: `swatch series-${index}` }));
      svg.appendChild(s("text", { x: x + 14, y: height - 3, class: "legend" }, line.name));
    });
  }
  return svg;
}

function shortDay(x) {
  const date = new Date(`${x}T00:00:00`);
  if (Number.isNaN(date.getTime())) return x;
  return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

/** Bars with their value written above: `bars` = [{label, value, note}]; the axis reaches at
 * least `atLeast` (so a 0.5% rate does not fill the chart). */
export function barChart({ title, bars, unit = "", format = plain, width = 560, height = 220, atLeast = 0 }) {
  const svg = frame({ title, width, height });
  const left = 56;
  const right = width - 12;
  const top = 24;
  const bottom = height - 36;
  const maxY = niceMax(Math.max(atLeast, ...bars.map((bar) => Number(bar.value))));
  yAxis(svg, { max: maxY, left, top, bottom, right, unit, format });
  if (!bars.length) {
    svg.appendChild(s("text", { x: (left + right) / 2, y: (top + bottom) / 2, class: "no-data", "text-anchor": "middle" }, "No data yet"));
    return svg;
  }
  const slot = (right - left) / bars.length;
  const barWidth = Math.min(64, slot * 0.6);
  bars.forEach((bar, index) => {
    const x = left + slot * index + (slot - barWidth) / 2;
    const y = bottom - ((bottom - top) * Number(bar.value)) / maxY;
    const text = `${bar.label}: ${format(bar.value)}${unit ? ` ${unit}` : ""}${bar.note ? ` (${bar.note})` : ""}`;
    svg.appendChild(
      s("rect", { x, y, width: barWidth, height: Math.max(0, bottom - y), class: `bar series-${index % 4}` }, s("title", {}, text)),
    );
    svg.appendChild(s("text", { x: x + barWidth / 2, y: y - 4, class: "value", "text-anchor": "middle" }, format(bar.value)));
    svg.appendChild(s("text", { x: x + barWidth / 2, y: bottom + 16, class: "tick", "text-anchor": "middle" }, bar.label));
  });
  return svg;
}

/** A rate with its interval: a line from low to high on a 0..max scale, a mark at the value. */
export function intervalBar({ title, value, low, high, max = 1, format = (v) => `${(v * 100).toFixed(1)}%`, width = 260, height = 34 }) {
  const svg = frame({ title, width, height });
  const left = 6;
  const right = width - 6;
  const mid = 14;
  const scale = (v) => left + ((right - left) * Math.min(Math.max(Number(v) || 0, 0), max)) / max;
  svg.appendChild(s("line", { x1: left, x2: right, y1: mid, y2: mid, class: "track" }));
  if (low !== null && low !== undefined && high !== null && high !== undefined) {
    svg.appendChild(
      s("rect", { x: scale(low), y: mid - 5, width: Math.max(1, scale(high) - scale(low)), height: 10, class: "interval" },
        s("title", {}, `${title}: ${format(value)} (interval ${format(low)} – ${format(high)})`)),
    );
  }
  if (value !== null && value !== undefined) {
    svg.appendChild(s("line", { x1: scale(value), x2: scale(value), y1: mid - 9, y2: mid + 9, class: "estimate" }));
  }
  svg.appendChild(s("text", { x: left, y: height - 2, class: "tick" }, format(0)));
  svg.appendChild(s("text", { x: right, y: height - 2, class: "tick", "text-anchor": "end" }, format(max)));
  return svg;
}
