// A live training chart (ui/live_chart.py): one Plotly chart in the page itself, updated in place
// with Plotly.react on every refresh. Its Plotly is the page's own: the one Streamlit loads
// for st.plotly_chart, which plotly.js publishes as window.Plotly.

function whenPlotly() {
  if (!window.__studioPlotly) {
    window.__studioPlotly = new Promise((resolve) => {
      const look = () => (window.Plotly ? resolve(window.Plotly) : setTimeout(look, 200));
      look();
    });
  }
  return window.__studioPlotly;
}

function themed(layout, element) {
  // The page's own font and text colour, so the chart matches the st.plotly_chart charts around it.
  const style = getComputedStyle(element);
  const faint = "rgba(128,128,128,0.2)";
  const axis = (a) => Object.assign({ gridcolor: faint, zerolinecolor: faint, linecolor: faint }, a);
  const title = layout.title || {};
  return Object.assign({}, layout, {
    font: Object.assign({ family: style.fontFamily, color: style.color }, layout.font),
    title: Object.assign({}, title, { x: 0, xanchor: "left", font: Object.assign({ weight: 600 }, title.font) }),
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    xaxis: axis(layout.xaxis),
    yaxis: axis(layout.yaxis),
  });
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
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
    chart.style.minHeight = `${data.figure.layout.height}px`;
    parentElement.appendChild(chart);
  }
  chart.latest = data.figure; // a refresh that comes before Plotly replaces the one before
  whenPlotly().then((Plotly) => {
    // The same element every time: Plotly redraws what changed, and keeps the user's zoom while
    // layout.uirevision stays the same.
    const figure = chart.latest;
    Plotly.react(chart, figure.data, themed(figure.layout, chart), { displaylogo: false, responsive: true });
  });
}
