"""The HTML report in a real browser: headless Chromium loads it offline, every embedded
image decodes, no script error, and clicking a column header sorts the table.
Skipped (with the reason) when no Chromium is installed; .ci/run installs it."""

import html
import json
import re
import shutil
import subprocess

import pytest
from synthetic_results import write_experiment

from grucli.report import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

# Inserted into a copy of the report: collect script errors from the start, then after
# load record each image's decode state and sort the summary table by "params".
WATCH = "<script>window.__errors=[];window.addEventListener('error',function(e){window.__errors.push(String(e.message))});</script>"
PROBE = """<script>window.addEventListener('load',function(){
var imgs=Array.from(document.images).map(function(i){return [i.complete,i.naturalWidth,i.naturalHeight]});
var th=Array.from(document.querySelectorAll('table.sortable th')).find(function(h){return h.textContent==='params'});
th.click();var i=th.cellIndex;
var col=Array.from(th.closest('table').tBodies[0].rows).map(function(r){return r.cells[i].textContent});
var out=document.createElement('pre');out.id='probe';
out.textContent=JSON.stringify({images:imgs,errors:window.__errors,sorted:col});
document.body.appendChild(out);});</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium; .ci/run does it)")
def test_html_report_renders_in_headless_chromium(tmp_path):
    exp = write_experiment(tmp_path, seq_lens=(10, 20))
    res = build_report([exp], formats=("html",), figure_formats=("png",))
    page = (res.out / "report.html").read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("<head>", "<head>" + WATCH, 1).replace("</body>", PROBE + "</body>", 1))
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
           "--dump-dom", probe.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, f"the probe did not run; chromium printed: {dom[:500]!r}"
    result = json.loads(html.unescape(found.group(1)))
    n_png = len(list((res.out / "figures").glob("*.png")))
    assert len(result["images"]) == n_png >= 4
    assert all(complete and w > 0 and h > 0 for complete, w, h in result["images"]), result["images"]
    assert result["errors"] == []
    params = [int(v.replace(",", "")) for v in result["sorted"]]
    assert params == sorted(params) and len(set(params)) == 3
