// epi-dash: Bokeh's TablerIcon loads its font and stylesheet from a CDN; point it at the copies this
// server serves next to this script (static/tabler), so icons show on a machine without internet.
(function () {
  const base = new URL("tabler", document.currentScript.src).href;
  const { TablerIconView } = Bokeh.require("models/ui/icons/tabler_icon");
  TablerIconView._url = base;  // read by each icon view for tabler-icons.min.css
  TablerIconView._fonts.replace(  // the document-wide @font-face (shadow roots ignore their own)
    `@font-face { font-family: "tabler-icons"; font-style: normal; font-weight: 400;
       src: url("${base}/fonts/tabler-icons.woff2") format("woff2"); }`);
  // The glyph is decoration: keep it (a private-use character) out of the button's accessible name,
  // so "Start" reads "Start" to screen readers and to tests' get_by_role(name=...).
  const render = TablerIconView.prototype.render;
  TablerIconView.prototype.render = function () {
    render.call(this);
    this.el.setAttribute("aria-hidden", "true");
  };
})();
