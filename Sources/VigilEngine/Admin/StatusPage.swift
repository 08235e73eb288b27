/// The admin endpoint's `/`: one HTML page, with no external assets, that an analyst or an SRE
/// opens in a browser to see the engine live (throughput, alert rate against its target, the
/// threshold, the recent alerts with their explanations, the models with their live quality,
/// drift, the last checkpoint and reload). It reads `/status` every two seconds; nothing on it
/// needs the admin token.
enum StatusPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Vigil</title>
        <style>
          body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f5f6f8; color: #1d2330; }
          header { background: #1d2330; color: #fff; padding: 10px 20px; display: flex; gap: 16px; align-items: baseline; }
          header h1 { font-size: 18px; margin: 0; }
          .pill { padding: 1px 8px; border-radius: 10px; font-size: 12px; background: #556; }
          .pill.ok { background: #2e7d32; } .pill.bad { background: #c62828; }
          main { padding: 16px 20px; display: grid; gap: 16px; }
          .tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; }
          .tile, section { background: #fff; border-radius: 6px; padding: 10px 14px; box-shadow: 0 1px 2px #0002; }
          .tile .label { color: #667; font-size: 12px; } .tile .value { font-size: 22px; font-weight: 600; }
          .tile .sub { color: #667; font-size: 12px; }
          section h2 { font-size: 15px; margin: 0 0 8px; }
          table { border-collapse: collapse; width: 100%; font-size: 13px; }
          th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #e4e6ea; vertical-align: top; }
          th { color: #556; font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
          .muted { color: #889; } .why { color: #445; font-size: 12px; }
          #error { color: #c62828; }
        </style>
        </head>
        <body>
        <header><h1>Vigil · <span id="topology">…</span></h1><span id="phase" class="pill">…</span>
          <span id="updated" class="muted"></span><span id="error"></span></header>
        <main>
          <div class="tiles">
            <div class="tile"><div class="label">Events / s</div><div class="value" id="eps">…</div><div class="sub" id="events"></div></div>
            <div class="tile"><div class="label">Alerts / s</div><div class="value" id="aps">…</div><div class="sub" id="alerts"></div></div>
            <div class="tile"><div class="label">Alert rate (target)</div><div class="value" id="rate">…</div><div class="sub" id="target"></div></div>
            <div class="tile"><div class="label">Threshold</div><div class="value" id="threshold">…</div><div class="sub" id="mode"></div></div>
            <div class="tile"><div class="label">Entities</div><div class="value" id="entities">…</div><div class="sub" id="keyed"></div></div>
            <div class="tile"><div class="label">Last checkpoint</div><div class="value" id="checkpoint">…</div><div class="sub" id="checkpointSub"></div></div>
          </div>
          <section><h2>Models</h2><table id="models"><thead><tr><th>model</th><th>role</th><th>version</th>
            <th>weight</th><th>ROC-AUC</th><th>avg precision</th><th>precision</th><th>recall</th><th>labelled</th></tr></thead><tbody></tbody></table></section>
          <section><h2>Recent alerts</h2><table id="recent"><thead><tr><th>event time</th><th>entity</th><th>event</th>
            <th>score</th><th>why</th><th>alert id</th></tr></thead><tbody></tbody></table></section>
          <section><h2>Drift, reloads, dead letters</h2><div id="events-of-note"></div></section>
        </main>
        <script>
        "use strict";
        const $ = id => document.getElementById(id);
        const fmt = (v, d = 3) => v == null || Number.isNaN(v) ? "–" : Number(v).toFixed(d);
        const count = v => v == null ? "–" : Number(v).toLocaleString("en");
        const text = s => String(s ?? "").replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
        let last = null;
        function render(s) {
          const now = Date.now();
          $("topology").textContent = s.topology;
          $("phase").textContent = s.ready ? "ready" : s.phase;
          $("phase").className = "pill " + (s.ready ? "ok" : "bad");
          $("updated").textContent = "updated " + new Date(now).toISOString().slice(11, 19) + " UTC";
          let eps = s.rates_per_second.events, aps = s.rates_per_second.alerts;
          if (last && now > last.time) {
            eps = (s.events - last.events) * 1000 / (now - last.time);
            aps = (s.alerts - last.alerts) * 1000 / (now - last.time);
          }
          last = {time: now, events: s.events, alerts: s.alerts};
          $("eps").textContent = count(Math.round(eps));
          $("events").textContent = count(s.events) + " read";
          $("aps").textContent = fmt(aps, 2);
          $("alerts").textContent = count(s.alerts) + " raised";
          $("rate").textContent = s.events ? fmt(100 * s.alerts / s.events, 2) + " %" : "–";
          $("target").textContent = "target " + fmt(100 * s.threshold.target_alert_rate, 2) + " % (" + s.threshold.mode + ")";
          $("threshold").textContent = fmt(s.threshold.current, 4);
          $("mode").textContent = "live, mean over " + s.workers + " workers";
          $("entities").textContent = count(s.entities);
          $("keyed").textContent = Object.entries(s.keyed_entities || {}).map(([k, n]) => k + " " + count(n)).join(", ");
          if (s.last_checkpoint) {
            $("checkpoint").textContent = "#" + s.last_checkpoint.sequence;
            $("checkpointSub").textContent = Math.round((now - s.last_checkpoint.time_ms) / 1000) + " s ago, "
              + count(Math.round(s.last_checkpoint.bytes / 1024)) + " KiB";
          } else {
            $("checkpoint").textContent = "none";
            $("checkpointSub").textContent = s.restored_from != null ? "restored from #" + s.restored_from : "";
          }
          $("models").tBodies[0].innerHTML = s.models.map(m => {
            const q = m.quality || {};
            return "<tr><td>" + text(m.name) + "</td><td>" + text(m.role) + "</td><td class=muted>" + text(m.version || "")
              + "</td><td class=num>" + fmt(q.ensemble_weight ?? m.weight, 2) + "</td><td class=num>" + fmt(q.roc_auc)
              + "</td><td class=num>" + fmt(q.average_precision) + "</td><td class=num>" + fmt(q.precision)
              + "</td><td class=num>" + fmt(q.recall) + "</td><td class=num>" + count(q.labelled) + "</td></tr>";
          }).join("");
          $("recent").tBodies[0].innerHTML = (s.recent_alerts || []).map(a => {
            const why = (a.features || []).map(f => text(f.name) + "=" + fmt(f.value, 2)).join(", ");
            return "<tr><td>" + text(a.event_time) + "</td><td>" + text(a.entity) + "</td><td>" + text(a.event_id)
              + "</td><td class=num>" + fmt(a.score, 4) + "</td><td class=why>" + why + "</td><td class=muted>"
              + text(a.alert_id) + "</td></tr>";
          }).join("") || "<tr><td colspan=6 class=muted>no alert yet</td></tr>";
          const notes = [];
          for (const d of s.drift || []) notes.push("drift: " + text(d.detector) + " on " + text(d.subject) + " × " + d.count);
          if (s.last_reload) notes.push("last reload: " + text(s.last_reload.outcome) + " (" + text(s.last_reload.source)
            + ", " + text(s.last_reload.time) + ")");
          for (const [reason, n] of Object.entries(s.dead_letters || {})) notes.push("dead letters, " + text(reason) + ": " + count(n));
          $("events-of-note").innerHTML = notes.length ? notes.map(n => "<div>" + n + "</div>").join("")
            : "<span class=muted>no drift, reload or dead letter</span>";
        }
        async function poll() {
          try {
            const r = await fetch("status", {cache: "no-store"});
            render(await r.json());
            $("error").textContent = "";
          } catch (e) {
            $("error").textContent = "cannot reach the engine: " + e;
          }
        }
        poll();
        setInterval(poll, 2000);
        </script>
        </body>
        </html>
        """#
}
