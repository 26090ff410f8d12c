// A running run's view (ui/live_run.py): its progress, and its curves on the Train page, kept current by
// this script. Once a second it asks the feed (ui/live_feed.py) for what changed, and draws it: the
// progress line, and only the points each chart lacks (Plotly.extendTraces), or a whole figure when more
// than the ends of its lines changed. No Streamlit script run is needed for that: each one re-renders the
// whole page in the browser. When the run's "phase" changes (it starts, ends, scores its first epoch, Stop
// is asked), it asks Streamlit to run the page again, once, so the page's own elements follow; and when
// an epoch ends, but not more often than every `epochs_every` s.
// Every 10 s while the browser tab is hidden; at once when it is shown again.

const views = new WeakMap(); // parentElement -> its view, kept across the page's runs

function element(tag, className, parent) {
  const node = document.createElement(tag);
  node.className = className;
  parent.appendChild(node);
  return node;
}

// The component lives in a shadow root (isolate_styles): what Plotly changes at each redraw stays out of
// Streamlit's own document, whose :has() rules otherwise restyled the page's containers at every change.
// Plotly's own rules (their layering of SVGs, the hover labels) are in the document's head: copied in.
function plotlyStyles(root) {
  if (root === document || root.querySelector("style.studio-plotly-rules")) return;
  const rules = [];
  for (const sheet of document.styleSheets) {
    const node = sheet.ownerNode;
    if (!node || !node.id || !node.id.startsWith("plotly.js-style")) continue;
    for (const rule of sheet.cssRules) rules.push(rule.cssText);
  }
  if (!rules.length) return;
  const style = document.createElement("style");
  style.className = "studio-plotly-rules";
  style.textContent = rules.join("\n");
  (root.host ? root : document.head).appendChild(style);
}

class View {
  constructor(parent) {
    this.root = element("div", "studio-live-run", parent);
    this.caption = element("div", "studio-live-caption", this.root);
    this.text = element("div", "studio-live-text", this.root);
    this.track = element("div", "studio-live-track", this.root);
    this.bar = element("div", "studio-live-bar", this.track);
    this.starting = element("div", "studio-live-note", this.root);
    this.steps = element("div", "studio-run-charts", this.root);
    this.note = element("div", "studio-live-note", this.root);
    this.epochs = element("div", "studio-run-charts studio-run-pair", this.root);
    this.charts = {}; // key -> its chart's element
    this.timer = null;
    this.busy = false;
    this.stopped = true;
    this.onVisible = () => {
      if (!document.hidden) this.schedule(0);
    };
    this.caption.style.cssText = "font-size:0.875rem;opacity:0.7;margin-bottom:0.25rem";
    this.text.style.cssText = "font-size:0.875rem;margin-bottom:0.25rem;overflow-wrap:anywhere";
    this.track.style.cssText =
      "height:0.5rem;border-radius:0.25rem;background:rgba(128,128,128,0.2);overflow:hidden;margin-bottom:0.75rem";
    this.bar.style.cssText = "height:100%;width:0;border-radius:0.25rem";
    this.epochs.style.cssText = "display:flex;flex-wrap:wrap;gap:1rem";
    for (const note of [this.starting, this.note]) note.style.cssText = "font-size:0.875rem;opacity:0.7;margin:0.5rem 0";
  }

  // A page run drew this view again: take its data (the whole figures, the rows they were drawn from).
  render(data) {
    if (this.data && this.data.revision === data.revision) return; // the same page run, rendered again
    this.data = data;
    this.rendered = this.drawn = Date.now();
    this.have = data.rows || 0;
    this.full = false;
    this.asked = null;
    this.bar.style.background = data.color;
    this.caption.style.display = data.caption ? "" : "none";
    this.show({ text: data.text, fraction: data.fraction, caption: data.caption, sidebar_text: data.sidebar_text,
      waiting: data.waiting });
    const figures = data.charts || {};
    for (const key of Object.keys(this.charts)) {
      if (!(key in figures)) {
        this.charts[key].remove();
        delete this.charts[key];
      }
    }
    for (const [key, figure] of Object.entries(figures)) this.figure(key, figure);
    this.notes();
  }

  // While nothing is logged, what the worker is doing; while no epoch is scored, when the epoch charts come.
  notes() {
    const run = this.data.mode === "run";
    this.starting.textContent = run && !this.have && !this.waiting ? this.data.starting_note : "";
    this.starting.style.display = this.starting.textContent ? "" : "none";
    this.note.textContent = run && !this.charts.epoch_loss ? this.data.epochs_note : "";
    this.note.style.display = this.note.textContent ? "" : "none";
  }

  show(answer) {
    if (answer.waiting !== undefined) this.waiting = answer.waiting; // in the queue: no worker starts yet
    const sidebar = this.data.mode === "sidebar";
    if (sidebar && answer.caption !== undefined) this.caption.textContent = answer.caption;
    const text = sidebar ? answer.sidebar_text : answer.text;
    if (text !== undefined) this.text.textContent = text;
    if (answer.fraction !== undefined) this.bar.style.width = `${Math.round(answer.fraction * 1000) / 10}%`;
  }

  chart(key) {
    if (!this.charts[key]) {
      const chart = element("div", "studio-run-chart", key === "steps" ? this.steps : this.epochs);
      chart.dataset.testid = `studio-live-chart-${key}`;
      chart.style.cssText = "flex:1 1 280px;min-width:0";
      chart.dataset.key = key;
      chart.drawn = Promise.resolve();
      this.charts[key] = chart;
    }
    return this.charts[key];
  }

  // One change after the other, in the order they came, once the tab has Plotly.
  draw(key, how) {
    const chart = this.chart(key);
    chart.drawn = chart.drawn
      .then(() => whenPlotly())
      .then((Plotly) => {
        const result = how(Plotly, chart);
        plotlyStyles(chart.getRootNode());
        return result;
      })
      .catch((error) => {
        console.error(error);
        this.full = true; // whatever went wrong, whole figures next time
      });
  }

  figure(key, figure) {
    this.chart(key).style.minHeight = `${figure.layout.height}px`;
    this.draw(key, (Plotly, chart) =>
      // The same element every time: Plotly redraws what changed, and keeps the user's zoom while
      // layout.uirevision stays the same.
      Plotly.react(chart, figure.data, themed(figure.layout, chart), { displaylogo: false, responsive: true }),
    );
  }

  extend(key, tails) {
    this.draw(key, (Plotly, chart) => {
      const traces = [];
      const x = [];
      const y = [];
      for (let i = 0; i < tails.from.length; i++) {
        const have = chart.data && chart.data[i] && chart.data[i].x ? chart.data[i].x.length : 0;
        if (have !== tails.from[i]) {
          this.full = true; // an update was missed: no gap, the whole figure next time
          return;
        }
        if (tails.x[i].length) {
          traces.push(i);
          x.push(tails.x[i]);
          y.push(tails.y[i]);
        }
      }
      if (traces.length) return Plotly.extendTraces(chart, { x, y }, traces);
    });
  }

  // The run moved on in a way the page's own elements show: run the page again, once for each change.
  rerun(reason) {
    if (this.asked === reason) return;
    this.asked = reason;
    this.trigger("phase", reason);
  }

  async poll() {
    const data = this.data;
    // The curves every `charts_every` s (each update redraws a Plotly chart: the costly part of watching),
    // at once while they are empty or after a missed update; the progress at every look.
    const charts = Boolean(data.charts) && (!this.have || this.full || Date.now() - (this.drawn || 0) >= data.charts_every * 1000 - 100);
    const query = new URLSearchParams({
      rows: String(this.have),
      log: data.log ? "1" : "0",
      charts: charts ? "1" : "0",
      full: this.full ? "1" : "0",
    });
    const response = await fetch(`${data.url}?${query}`, { cache: "no-store", credentials: "same-origin" });
    if (!response.ok) throw new Error(`the live view's feed answered ${response.status}`);
    const answer = await response.json();
    if (this.data !== data || this.stopped) return; // the page ran meanwhile: its data is newer
    if (answer.gone) return this.rerun("gone");
    this.show(answer);
    if (answer.charts) {
      this.full = false;
      for (const [key, change] of Object.entries(answer.charts)) {
        if (!this.charts[key] && !change.figure) continue; // not drawn yet: its whole figure comes next
        if (change.figure) this.figure(key, change.figure);
        else this.extend(key, change);
      }
      this.have = answer.rows;
      this.drawn = Date.now();
      this.notes();
    }
    if (answer.phase !== data.phase) this.rerun(answer.phase);
    else if (data.epochs !== undefined && answer.epochs !== data.epochs &&
      Date.now() - this.rendered > data.epochs_every * 1000) {
      this.rerun(`${answer.phase}|${answer.epochs}`);
    }
  }

  // The next look: every `every` s, on the second (so the sidebar's view and the page's look together),
  // every `hidden_every` s while the tab is hidden, every `starting_every` s until the first point.
  schedule(delay) {
    if (this.stopped) return;
    clearTimeout(this.timer);
    if (delay === undefined) {
      const data = this.data;
      if (document.hidden) delay = data.hidden_every * 1000;
      else if (data.charts && !this.have && !this.waiting) delay = data.starting_every * 1000;
      else delay = data.every * 1000 - (Date.now() % 1000) + 20;
    }
    this.timer = setTimeout(() => this.tick(), delay);
  }

  async tick() {
    if (this.busy || this.stopped) return;
    this.busy = true;
    let delay;
    try {
      await this.poll();
    } catch (error) {
      // The server restarting, a network hiccup, or a server without the feed (`streamlit run app.py`
      // rather than serve.py): look again in a few seconds.
      console.warn(error);
      delay = 5000;
    } finally {
      this.busy = false;
      this.schedule(delay);
    }
  }

  start(trigger) {
    this.trigger = trigger;
    if (!this.stopped) return;
    this.stopped = false;
    document.addEventListener("visibilitychange", this.onVisible);
    this.schedule();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    document.removeEventListener("visibilitychange", this.onVisible);
  }
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let view = views.get(parentElement);
  if (!view) {
    view = new View(parentElement);
    views.set(parentElement, view);
  }
  view.render(data);
  view.start(setTriggerValue);
  return () => view.stop();
}
