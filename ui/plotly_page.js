// What the page's own Plotly charts share (ui/live_chart.js, ui/live_run.js): the page's Plotly, the one
// Streamlit loads for st.plotly_chart (plotly.js publishes it as window.Plotly), and the page's look.
// ui/live_chart.py puts this before each of those scripts.

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
