// A live training chart (ui/live_chart.py): one Plotly chart in the page itself, updated in place.
// A refresh brings either a whole figure (Plotly.react) or only the points added to the ends of its
// lines (Plotly.extendTraces). Its Plotly is the page's own: the one Streamlit loads for
// st.plotly_chart, which plotly.js publishes as window.Plotly (ui/plotly_page.js, put before this).

function draw(Plotly, chart, data, resync) {
  if (data.figure) {
    if (chart.revision === data.revision) return; // the same refresh, rendered again
    chart.revision = data.revision;
    const { figure } = data;
    // The same element every time: Plotly redraws what changed, and keeps the user's zoom while
    // layout.uirevision stays the same.
    Plotly.react(chart, figure.data, themed(figure.layout, chart), { displaylogo: false, responsive: true });
    return;
  }
  const tails = data.extend;
  if (chart.revision !== data.revision) return resync(); // built anew since: it needs the whole figure
  const traces = [];
  const x = [];
  const y = [];
  for (let i = 0; i < tails.from.length; i++) {
    const have = chart.data[i].x ? chart.data[i].x.length : 0;
    if (have === tails.from[i] + tails.x[i].length) continue; // already added (the same refresh again)
    if (have !== tails.from[i]) return resync(); // a refresh was missed: no gap, the whole figure
    if (tails.x[i].length) {
      traces.push(i);
      x.push(tails.x[i]);
      y.push(tails.y[i]);
    }
  }
  if (traces.length) Plotly.extendTraces(chart, { x, y }, traces);
}

export default function (component) {
  const { data, parentElement, setStateValue, setTriggerValue } = component;
  if (data.wait) {
    // The waiter: the live view draws st.plotly_chart until this says the tab has Plotly.
    let mounted = true;
    whenPlotly().then(() => mounted && setStateValue("ready", true));
    return () => {
      mounted = false;
    };
  }
  let chart = parentElement.querySelector(".studio-live-chart");
  if (!chart) {
    chart = document.createElement("div");
    chart.className = "studio-live-chart";
    chart.style.minHeight = `${data.figure ? data.figure.layout.height : 0}px`;
    parentElement.appendChild(chart);
    chart.drawn = Promise.resolve();
  }
  const resync = () => {
    chart.revision = undefined;
    setTriggerValue("resync", true);
  };
  // One refresh after the other, in the order they came, once the tab has Plotly.
  chart.drawn = chart.drawn
    .then(() => whenPlotly())
    .then((Plotly) => draw(Plotly, chart, data, resync))
    .catch((error) => {
      console.error(error);
      resync(); // whatever went wrong, the whole figure next time
    });
}
