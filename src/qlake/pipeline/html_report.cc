#include "qlake/pipeline/html_report.h"

#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "qlake/lake/fs_util.h"
#include "qlake/lake/lake.h"

namespace qlake::pipeline {

namespace {

constexpr std::string_view kPage = R"QLAKEHTML(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>qlake report</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
figure.plot{margin:8px 0 20px 0}figcaption{font-weight:600;margin-bottom:4px}
svg{background:#fafafa;border:1px solid #ddd}
table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:left}
.legend span{display:inline-block;margin-right:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
.muted{color:#777}
</style></head>
<body data-rendered="0">
<h1>qlake report</h1>
<p class="muted" id="meta"></p>
<table id="summary"></table>
<div id="plots"></div>
<script type="application/json" id="qlake-data">__DATA__</script>
<script>
(function(){
var D=JSON.parse(document.getElementById('qlake-data').textContent);
var NS='http://www.w3.org/2000/svg';
var COLORS=['#4e79a7','#f28e2b','#e15759','#76b7b2','#59a14f','#edc948','#b07aa1','#ff9da7','#9c755f','#bab0ac'];
function el(n,a,p){var e=document.createElementNS(NS,n);for(var k in a)e.setAttribute(k,a[k]);if(p)p.appendChild(e);return e;}
function h(tag,txt,p){var e=document.createElement(tag);if(txt!==undefined)e.textContent=txt;if(p)p.appendChild(e);return e;}
document.getElementById('meta').textContent='lake '+D.lake+' \u00b7 source '+D.source+' \u00b7 generated '+D.generated_at;
var t=document.getElementById('summary');
var hr=h('tr',undefined,t);['dataset','first day','watermark','days','missing','pending','rows written','quarantined'].forEach(function(c){h('th',c,hr);});
D.datasets.forEach(function(d){var r=h('tr',undefined,t);[d.dataset,d.first_day||'-',d.watermark||'-',d.committed_days,d.missing_count,d.pending_count,d.rows_written,d.rows_quarantined].forEach(function(c){h('td',String(c),r);});});
var plots=document.getElementById('plots');
// Bar chart: labels[], series[{name,values[]}]; stacked bars.
function bars(key,title,labels,series,colorOf){
  var fig=h('figure',undefined,plots);fig.className='plot';fig.setAttribute('data-plot',key);
  h('figcaption',title,fig);
  var W=1100,H=220,L=70,B=30,T=10,R=10;
  var svg=el('svg',{width:W,height:H,viewBox:'0 0 '+W+' '+H,role:'img'},fig);
  var n=labels.length,max=0,marks=0;
  for(var i=0;i<n;i++){var s=0;series.forEach(function(se){s+=se.values[i]||0;});if(s>max)max=s;}
  if(max<=0)max=1;
  var bw=(W-L-R)/Math.max(n,1);
  el('line',{x1:L,y1:H-B,x2:W-R,y2:H-B,stroke:'#999'},svg);
  el('line',{x1:L,y1:T,x2:L,y2:H-B,stroke:'#999'},svg);
  var ty=el('text',{x:L-6,y:T+10,'text-anchor':'end','font-size':11},svg);ty.textContent=max.toLocaleString();
  var t0=el('text',{x:L-6,y:H-B,'text-anchor':'end','font-size':11},svg);t0.textContent='0';
  if(n){var a=el('text',{x:L,y:H-8,'font-size':11},svg);a.textContent=labels[0];
        var b=el('text',{x:W-R,y:H-8,'font-size':11,'text-anchor':'end'},svg);b.textContent=labels[n-1];}
  for(var i=0;i<n;i++){
    var y=H-B;
    series.forEach(function(se,si){
      var v=se.values[i]||0;if(v<=0)return;
      var bh=(H-B-T)*v/max;y-=bh;
      var r=el('rect',{x:L+i*bw+bw*0.1,y:y,width:Math.max(bw*0.8,1),height:Math.max(bh,0.5),fill:colorOf?colorOf(se,i):COLORS[si%COLORS.length],'class':'mark'},svg);
      var tt=el('title',{},r);tt.textContent=labels[i]+' '+se.name+': '+v.toLocaleString();
      marks++;
    });
  }
  if(series.length>1||colorOf){var lg=h('div',undefined,fig);lg.className='legend';series.forEach(function(se,si){var s=h('span',undefined,lg);var i=h('i',undefined,s);i.style.background=se.color||COLORS[si%COLORS.length];s.appendChild(document.createTextNode(se.name));});}
  fig.setAttribute('data-rendered',String(marks));
  return marks;
}
h('h2','Rows per day',plots);
D.datasets.forEach(function(d){
  var labels=d.days.map(function(x){return x.day;});
  bars('rows-'+d.dataset,d.dataset+': rows written and quarantined per day',labels,
       [{name:'written',values:d.days.map(function(x){return x.written;})},
        {name:'quarantined',values:d.days.map(function(x){return x.quarantined;}),color:COLORS[2]}]);
});
h('h2','Committed and missing days',plots);
D.datasets.forEach(function(d){
  var all={};d.days.forEach(function(x){all[x.day]='committed';});
  d.missing.forEach(function(x){all[x]='missing';});d.pending.forEach(function(x){all[x]='pending';});
  var labels=Object.keys(all).sort();
  var col={committed:'#59a14f',missing:'#e15759',pending:'#bab0ac'};
  bars('days-'+d.dataset,d.dataset+': committed (green), missing past publish time (red), pending (grey)',labels,
       [{name:'committed',values:labels.map(function(x){return all[x]==='committed'?1:0;}),color:col.committed},
        {name:'missing',values:labels.map(function(x){return all[x]==='missing'?1:0;}),color:col.missing},
        {name:'pending',values:labels.map(function(x){return all[x]==='pending'?1:0;}),color:col.pending}],
       function(se){return col[se.name];});
});
h('h2','Quarantine reasons over time',plots);
D.datasets.forEach(function(d){
  var reasons={};d.days.forEach(function(x){for(var k in x.reasons)reasons[k]=1;});
  var names=Object.keys(reasons).sort();
  var labels=d.days.map(function(x){return x.day;});
  bars('quarantine-'+d.dataset,d.dataset+': quarantined rows by reason'+(names.length?'':' (none)'),labels,
       names.map(function(k,i){return {name:k,color:COLORS[i%COLORS.length],values:d.days.map(function(x){return x.reasons[k]||0;})};}));
});
h('h2','Run durations',plots);
var sc={ok:'#59a14f',nothing_to_do:'#76b7b2',partial:'#edc948',failed:'#e15759',interrupted:'#b07aa1',running:'#bab0ac'};
var statuses=Object.keys(sc);
bars('runs','seconds per run (colour: status)',D.runs.map(function(r){return r.started_at+' '+r.command;}),
     statuses.map(function(s){return {name:s,color:sc[s],values:D.runs.map(function(r){return r.status===s?Math.max(r.seconds,0.001):0;})};}),
     function(se){return sc[se.name];});
document.body.setAttribute('data-rendered','1');
})();
</script>
<noscript>This report draws its plots with JavaScript.</noscript>
</body></html>
)QLAKEHTML";

}  // namespace

arrow::Result<std::string> BuildHtmlReport(const PipelineOptions& o, int max_days) {
  ARROW_ASSIGN_OR_RAISE(auto status, GetStatus(o));
  std::string lake_uri = o.project.lake;
  if (lake_uri.find("://") == std::string::npos) {
    lake_uri = std::filesystem::absolute(lake_uri).lexically_normal().string();
  }
  lake::LakeOptions lo;
  lo.create_root = false;
  ARROW_ASSIGN_OR_RAISE(auto lake, lake::Lake::Open(lake_uri, lo));
  nlohmann::json data;
  data["lake"] = status.lake;
  data["source"] = status.source;
  data["generated_at"] = lake::UtcNowIso8601();
  data["datasets"] = nlohmann::json::array();
  auto js = status.ToJson();
  for (std::size_t i = 0; i < status.datasets.size(); ++i) {
    const auto& d = status.datasets[i];
    nlohmann::json dj = js["datasets"][i];
    ARROW_ASSIGN_OR_RAISE(auto records, lake->ListCommits(d.dataset));
    std::size_t from = 0;
    if (max_days > 0 && records.size() > static_cast<std::size_t>(max_days)) {
      from = records.size() - static_cast<std::size_t>(max_days);
    }
    nlohmann::json days = nlohmann::json::array();
    for (std::size_t k = from; k < records.size(); ++k) {
      const auto& r = records[k];
      nlohmann::json reasons = nlohmann::json::object();
      if (r.validation.contains("rejected") && r.validation["rejected"].is_object()) {
        reasons = r.validation["rejected"];
      }
      days.push_back({{"day", FormatDate(r.day)},
                      {"read", r.rows.read},
                      {"written", r.rows.written},
                      {"quarantined", r.rows.quarantined},
                      {"reasons", reasons}});
    }
    dj["days"] = days;
    nlohmann::json missing = nlohmann::json::array(), pending = nlohmann::json::array();
    for (auto m : d.missing) missing.push_back(FormatDate(m));
    for (auto p : d.pending) pending.push_back(FormatDate(p));
    dj["missing"] = missing;
    dj["pending"] = pending;
    data["datasets"].push_back(std::move(dj));
  }
  ARROW_ASSIGN_OR_RAISE(auto runs, ListRunReports(lake_uri, 200));
  data["runs"] = nlohmann::json::array();
  for (const auto& r : runs) {
    data["runs"].push_back({{"run_id", r.value("run_id", "")},
                            {"command", r.value("command", "")},
                            {"status", r.value("status", "")},
                            {"started_at", r.value("started_at", "")},
                            {"seconds", r.value("seconds", 0.0)}});
  }
  // "</" inside the JSON must not end the script element.
  std::string json = data.dump();
  std::string safe;
  safe.reserve(json.size());
  for (std::size_t i = 0; i < json.size(); ++i) {
    if (json[i] == '<') {
      safe += "\\u003c";
    } else {
      safe += json[i];
    }
  }
  std::string page(kPage);
  auto pos = page.find("__DATA__");
  page.replace(pos, 8, safe);
  return page;
}

}  // namespace qlake::pipeline
