//! `/sim/agent`: a small agent console for people during the demo.
//!
//! It polls `/sim/chats` every two seconds: it is the agent's desk, not the visitor's
//! widget, so polling here costs nothing that matters.

use axum::response::Html;

pub(crate) async fn page() -> Html<&'static str> {
    Html(PAGE)
}

const PAGE: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>gms-sim agent console</title>
<style>
 body{font:15px/1.4 system-ui,sans-serif;margin:0;display:grid;grid-template-columns:320px 1fr;height:100vh;color:#1d2330}
 aside{border-right:1px solid #d5d9e0;overflow:auto;background:#f6f7f9}
 aside h1{font-size:16px;margin:12px}
 .chat{display:block;width:100%;text-align:left;border:0;border-bottom:1px solid #e3e6eb;background:none;padding:10px 12px;cursor:pointer;font:inherit}
 .chat[aria-current=true]{background:#dfe8ff}.chat small{color:#5b6475;display:block}
 main{display:flex;flex-direction:column;min-width:0}
 #log{flex:1;overflow:auto;padding:12px}
 .ev{margin:4px 0}.ev b{color:#31446b}.sys{color:#5b6475;font-style:italic}
 form{display:flex;gap:6px;padding:10px;border-top:1px solid #d5d9e0;flex-wrap:wrap}
 input{flex:1;min-width:160px;padding:8px;font:inherit}button{padding:8px 12px;font:inherit;cursor:pointer}
 #servers{margin:12px;font-size:13px}#servers button{padding:2px 6px;font-size:12px}
</style></head><body>
<aside><h1>Chats</h1><div id="chats"></div><div id="servers"></div>
<form id="ewt"><label for="ewt-seconds">Expected wait (s)</label><input id="ewt-seconds" type="number" min="0" placeholder="none">
<button>Set</button></form></aside>
<main><div id="log" aria-live="polite"><p class="sys">Pick a chat on the left.</p></div>
<form id="send"><input id="text" placeholder="Type a message as the agent" aria-label="Agent message" autocomplete="off">
<button>Send</button><button type="button" data-act="join">Join</button><button type="button" data-act="typing">Typing…</button>
<button type="button" data-act="push-url">Push URL</button><button type="button" data-act="leave">Leave</button>
<button type="button" data-act="end">End chat</button>
<select id="template" aria-label="Rich message template"><option>quick-replies</option><option>buttons</option>
<option>card</option><option>list</option><option>carousel</option></select><button type="button" id="rich">Send rich message</button></form></main>
<script>
let current=null;
const post=(path,body)=>fetch(path,{method:"POST",headers:{"Content-Type":"application/json"},body:JSON.stringify(body||{})})
  .then(async r=>{if(!r.ok)alert(await r.text());});
function line(e){const d=document.createElement("div");d.className="ev";const who=(e.from&&e.from.nickname)||"";
  if(e.type==="Message"){const b=document.createElement("b");b.textContent=who+": ";d.append(b,document.createTextNode(e.text||""));
    if(e.eventAttributes)d.append(" [rich]");}
  else{d.classList.add("sys");d.textContent=`#${e.index} ${who} ${e.type}${e.text?" "+e.text:""}`;}return d;}
async function refresh(){
  const chats=await (await fetch("/sim/chats")).json();const list=document.getElementById("chats");list.replaceChildren();
  for(const c of chats){const b=document.createElement("button");b.className="chat";b.setAttribute("aria-current",c.chatId===current);
    b.textContent=c.nickname;const s=document.createElement("small");
    s.textContent=`${c.chatId} · CS ${c.alias}${c.hosted?"":" (down)"} · ${c.ended?"ended":(c.agent?"with "+c.agent:"waiting")}`;
    b.append(s);b.onclick=()=>{current=c.chatId;refresh();};list.append(b);}
  const servers=await (await fetch("/sim/chat-servers")).json();const sv=document.getElementById("servers");sv.replaceChildren("Chat Servers:");
  for(const s of servers){const p=document.createElement("div");p.textContent=`${s.alias} pid ${s.pid} ${s.up?"up":"down"} `;
    for(const a of ["restart","stop","kill","start"]){const b=document.createElement("button");b.textContent=a;
      b.onclick=()=>post(`/sim/chat-servers/${s.alias}/${a}`).then(refresh);p.append(b," ");}sv.append(p);}
  if(!current)return;const chat=await (await fetch(`/sim/chats/${current}`)).json();const log=document.getElementById("log");
  const atEnd=log.scrollTop+log.clientHeight>=log.scrollHeight-4;log.replaceChildren(...chat.transcript.map(line));
  if(atEnd)log.scrollTop=log.scrollHeight;}
document.getElementById("send").onsubmit=e=>{e.preventDefault();const t=document.getElementById("text");
  if(!current||!t.value.trim())return;post(`/sim/chats/${current}/agent/message`,{text:t.value}).then(refresh);t.value="";};
for(const b of document.querySelectorAll("[data-act]"))b.onclick=()=>{if(!current)return;const a=b.dataset.act;
  const path=a==="end"?`/sim/chats/${current}/end`:`/sim/chats/${current}/agent/${a}`;
  const body=a==="join"?{nickname:"Agent Smith"}:a==="typing"?{typing:true}:a==="push-url"?{url:prompt("URL to push","https://example.com/")||""}:{};
  post(path,body).then(refresh);};
document.getElementById("rich").onclick=()=>{if(!current)return;
  post(`/sim/chats/${current}/agent/message`,{template:document.getElementById("template").value}).then(refresh);};
document.getElementById("ewt").onsubmit=e=>{e.preventDefault();const v=document.getElementById("ewt-seconds").value;
  post("/sim/ewt",{seconds:v===""?null:Number(v)});};
refresh();setInterval(refresh,2000);
</script></body></html>"##;
