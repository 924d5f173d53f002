// The chat page: conversations in localStorage, answers streamed from /v1/chat/completions (SSE), rendered with
// markdown.js. Model text only ever reaches the page as text nodes.
'use strict';

const $ = id => document.getElementById(id);
const ui = {
  sidebar: $('sidebar'), scrim: $('scrim'), list: $('conversations'), modelName: $('model-name'), title: $('title'),
  messages: $('messages'), empty: $('empty'), composer: $('composer'), input: $('input'), send: $('send'),
  stop: $('stop'), error: $('error'), settings: $('settings'), keyDialog: $('key-dialog'), keyInput: $('key-input'),
};

// ---- storage -------------------------------------------------------------------------------------------------------

const store = {
  load(key, fallback) {
    try {
      const v = localStorage.getItem(key);
      return v === null ? fallback : JSON.parse(v);
    } catch { return fallback; }
  },
  save(key, value) {
    try { localStorage.setItem(key, JSON.stringify(value)); }
    catch (e) { showError('Could not save in this browser: ' + e.message); }
  },
};

/** Conversations, newest first: { id, title, updated, messages: [{ role, content, reasoning, toolCalls, stats }] }. */
let conversations = store.load('lfm.conversations', []);
let currentId = store.load('lfm.current', null);
let settings = Object.assign({ system: '', temperature: '', maxTokens: '', effort: '', budget: '', extra: '' }, store.load('lfm.settings', {}));
let apiKey = store.load('lfm.apiKey', '');
let modelId = null;
/** The one running generation: { controller, conv, msg }. */
let running = null;

const saveConversations = () => store.save('lfm.conversations', conversations);
const current = () => conversations.find(c => c.id === currentId) || null;

function newId() {
  return Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
}

// ---- small DOM helpers ---------------------------------------------------------------------------------------------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(text, className, onClick, title) {
  const b = el('button', className, text);
  b.type = 'button';
  if (title) { b.title = title; b.setAttribute('aria-label', title); }
  b.addEventListener('click', onClick);
  return b;
}

function showError(text) {
  ui.error.textContent = text;
  ui.error.hidden = !text;
}

const nearBottom = () => ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 80;
const scrollToBottom = () => { ui.messages.scrollTop = ui.messages.scrollHeight; };

// ---- sidebar -------------------------------------------------------------------------------------------------------

function renderSidebar() {
  ui.list.replaceChildren(...conversations.map(c => {
    const li = el('li', c.id === currentId ? 'active' : '');
    li.dataset.id = c.id;
    li.append(button(c.title || 'New chat', 'conv-title', () => selectConversation(c.id)),
      button('×', 'conv-delete icon', () => deleteConversation(c.id), 'Delete conversation'));
    return li;
  }));
}

function selectConversation(id) {
  currentId = id;
  store.save('lfm.current', currentId);
  closeSidebar();
  renderAll();
}

function deleteConversation(id) {
  if (running && running.conv.id === id) running.controller.abort();
  conversations = conversations.filter(c => c.id !== id);
  if (currentId === id) currentId = null;
  saveConversations();
  store.save('lfm.current', currentId);
  renderAll();
}

function newChat() {
  currentId = null;
  store.save('lfm.current', null);
  closeSidebar();
  renderAll();
  ui.input.focus();
}

function closeSidebar() {
  ui.sidebar.classList.remove('open');
  ui.scrim.hidden = true;
}

// ---- messages ------------------------------------------------------------------------------------------------------

/** The DOM of each shown message, so a streamed update touches only its own parts. */
const views = new Map();

function renderAll() {
  const conv = current();
  ui.title.textContent = conv ? conv.title : 'New chat';
  document.title = (conv ? conv.title + ' · ' : '') + 'LfmSharp chat';
  renderSidebar();
  views.clear();
  ui.messages.replaceChildren();
  if (!conv || conv.messages.length === 0) {
    ui.messages.append(ui.empty);
    return;
  }
  conv.messages.forEach((m, i) => ui.messages.append(messageView(conv, m, i)));
  scrollToBottom();
}

function messageView(conv, msg, index) {
  const node = el('article', 'msg ' + msg.role);
  const view = { node };
  views.set(msg, view);
  if (msg.role === 'user') {
    view.body = el('div', 'bubble');
    view.body.textContent = msg.content;   // user text is shown as typed
    node.append(view.body);
  } else {
    view.thinking = el('details', 'thinking');
    view.thinkingSummary = el('summary');
    view.thinkingBody = el('div', 'thinking-body');
    view.thinking.append(view.thinkingSummary, view.thinkingBody);
    view.thinkingSummary.addEventListener('click', () => { view.userToggled = true; });
    view.tools = el('div', 'tools');
    view.body = el('div', 'content');
    view.meta = el('div', 'meta');
    node.append(view.thinking, view.tools, view.body, view.meta);
  }
  view.actions = el('div', 'actions');
  node.append(view.actions);
  updateMessage(conv, msg, index);
  return node;
}

function updateMessage(conv, msg, index = conv.messages.indexOf(msg)) {
  const view = views.get(msg);
  if (!view) return;
  const streaming = running && running.msg === msg;
  view.node.dataset.state = streaming ? 'streaming' : msg.stopped ? 'stopped' : msg.error ? 'error' : 'done';
  if (msg.role === 'assistant') {
    updateThinking(view, msg, streaming);
    view.tools.replaceChildren(...(msg.toolCalls || []).map(toolCard));
    view.body.replaceChildren(Markdown.render(msg.content || ''));
    if (streaming && !msg.content && !msg.reasoning && !(msg.toolCalls || []).length) view.body.append(el('span', 'cursor'));
    view.meta.textContent = metaText(msg, streaming);
    if (msg.error) view.meta.append(el('span', 'msg-error', ' ' + msg.error));
  }
  view.actions.replaceChildren(...actionsFor(conv, msg, index, streaming));
}

function updateThinking(view, msg, streaming) {
  const reasoning = msg.reasoning || '';
  view.thinking.hidden = !reasoning;
  if (!reasoning) return;
  view.thinkingBody.textContent = reasoning;
  const tokens = msg.reasoningTokens ?? msg.reasoningChunks ?? 0;
  const thinkingNow = streaming && !msg.reasoningMs;
  view.thinkingSummary.textContent = thinkingNow
    ? `Thinking… ${tokens} tokens`
    : `Thought for ${formatSeconds(msg.reasoningMs || 0)} · ${tokens} tokens`;
  // Open while the model thinks, folded once it answers, unless the user chose otherwise.
  if (!view.userToggled) view.thinking.open = thinkingNow;
}

function toolCard(call) {
  const card = el('div', 'tool-card');
  const head = el('div', 'tool-head');
  head.append(el('span', 'tool-icon', 'ƒ'), el('span', 'tool-name', call.name || '(unnamed tool)'), el('span', 'tool-label', 'tool call'));
  let args = call.arguments || '';
  try { args = JSON.stringify(JSON.parse(args), null, 2); } catch { /* still streaming or not JSON: show as sent */ }
  const pre = el('pre', 'tool-args');
  pre.append(el('code', null, args));
  card.append(head, pre);
  return card;
}

function metaText(msg, streaming) {
  const s = msg.stats;
  if (streaming) return s && s.tokens ? `${s.tokens} tokens…` : '';
  if (!s) return msg.stopped ? 'stopped' : '';
  const parts = [];
  if (s.tokens) parts.push(`${s.tokens} tokens`);
  if (s.tps) parts.push(`${s.tps.toFixed(1)} tokens/s`);
  if (s.ms) parts.push(formatSeconds(s.ms));
  if (msg.stopped) parts.push('stopped');
  else if (s.finish === 'length') parts.push('cut at max tokens');
  return parts.join(' · ');
}

function formatSeconds(ms) {
  if (ms < 100) return Math.max(1, Math.round(ms)) + ' ms';   // the small models think fast
  return ms < 10000 ? (ms / 1000).toFixed(1) + ' s' : Math.round(ms / 1000) + ' s';
}

function actionsFor(conv, msg, index, streaming) {
  if (streaming) return [];
  const last = index === conv.messages.length - 1;
  const actions = [];
  if (msg.role === 'user') {
    actions.push(button('Edit', 'link-button edit', () => editMessage(conv, msg)));
  } else {
    actions.push(button('Copy', 'link-button copy-answer', () => copyText(msg.content || '')));
    if (last) actions.push(button('Regenerate', 'link-button regenerate', () => regenerate(conv)));
  }
  return actions;
}

function copyText(text) {
  navigator.clipboard?.writeText(text).catch(() => showError('The browser did not allow copying.'));
}

function editMessage(conv, msg) {
  if (running) return;
  const view = views.get(msg);
  const box = el('textarea', 'edit-box');
  box.value = msg.content;
  box.setAttribute('aria-label', 'Edit message');
  const save = button('Save & send', 'primary save-edit', () => {
    const text = box.value.trim();
    if (!text) return;
    // Everything after the edited message answered the old text: drop it and ask again.
    conv.messages.splice(conv.messages.indexOf(msg) + 1);
    msg.content = text;
    if (conv.messages[0] === msg) conv.title = titleOf(text);
    startAnswer(conv);
  });
  const cancel = button('Cancel', '', () => renderAll());
  const bar = el('div', 'actions');
  bar.append(cancel, save);
  view.body.replaceChildren(box);
  view.actions.replaceChildren(bar);
  view.node.classList.add('editing');
  box.focus();
}

function regenerate(conv) {
  if (running) return;
  const last = conv.messages[conv.messages.length - 1];
  if (last && last.role === 'assistant') conv.messages.pop();
  startAnswer(conv);
}

// ---- sending and streaming -----------------------------------------------------------------------------------------

const titleOf = text => text.replace(/\s+/g, ' ').trim().slice(0, 48) || 'New chat';

function send(text) {
  if (running || !text.trim()) return;
  let conv = current();
  if (!conv) {
    conv = { id: newId(), title: titleOf(text), updated: Date.now(), messages: [] };
    conversations.unshift(conv);
    currentId = conv.id;
    store.save('lfm.current', currentId);
  }
  conv.messages.push({ role: 'user', content: text });
  ui.input.value = '';
  startAnswer(conv);
}

function startAnswer(conv) {
  const msg = { role: 'assistant', content: '', reasoning: '' };
  conv.messages.push(msg);
  conv.updated = Date.now();
  // Most recently used first.
  conversations = [conv, ...conversations.filter(c => c !== conv)];
  saveConversations();
  running = { controller: new AbortController(), conv, msg };
  setBusy(true);
  renderAll();
  streamAnswer(conv, msg).finally(() => {
    running = null;
    setBusy(false);
    saveConversations();
    // The final render supersedes a frame the last chunk scheduled; left pending, it re-rendered the finished answer
    // once more, replacing its elements after it already showed as done.
    cancelAnimationFrame(pendingFrame);
    pendingFrame = 0;
    if (conv === current()) updateMessage(conv, msg);
  });
}

function setBusy(busy) {
  ui.send.hidden = busy;
  ui.stop.hidden = !busy;
  ui.messages.classList.toggle('busy', busy);
}

function requestBody(conv, msg) {
  const messages = [];
  if (settings.system.trim()) messages.push({ role: 'system', content: settings.system });
  for (const m of conv.messages) {
    if (m === msg) break;
    if (m.role === 'user') { messages.push({ role: 'user', content: m.content }); continue; }
    const a = { role: 'assistant', content: m.content || '' };
    if (m.toolCalls && m.toolCalls.length) {
      a.tool_calls = m.toolCalls.map((t, i) => ({
        id: t.id || 'call_' + i, type: 'function',
        function: { name: t.name, arguments: isJson(t.arguments) ? t.arguments : '{}' },
      }));
    }
    messages.push(a);
  }
  const body = { messages, stream: true, stream_options: { include_usage: true } };
  if (modelId) body.model = modelId;
  if (settings.temperature !== '') body.temperature = Number(settings.temperature);
  if (settings.maxTokens !== '') body.max_tokens = Number(settings.maxTokens);
  if (settings.budget !== '') body.thinking_budget_tokens = Number(settings.budget);
  else if (settings.effort) body.reasoning_effort = settings.effort;
  return Object.assign(body, parseExtra(settings.extra) || {});
}

function isJson(text) {
  try { JSON.parse(text); return true; } catch { return false; }
}

function parseExtra(text) {
  if (!text || !text.trim()) return {};
  try {
    const v = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? v : null;
  } catch { return null; }
}

function headers() {
  const h = { 'Content-Type': 'application/json' };
  if (apiKey) h.Authorization = 'Bearer ' + apiKey;
  return h;
}

/** POSTs the chat request; on 401 asks for the key and tries again. */
async function post(conv, msg, signal) {
  for (;;) {
    const res = await fetch('/v1/chat/completions', { method: 'POST', headers: headers(), body: JSON.stringify(requestBody(conv, msg)), signal });
    if (res.status !== 401) return res;
    if (!(await askForKey())) throw new Error('This server needs an API key.');
  }
}

async function errorText(res) {
  const text = await res.text();
  try { return JSON.parse(text).error.message || text; } catch { return text || `HTTP ${res.status}`; }
}

async function streamAnswer(conv, msg) {
  showError('');
  const t0 = performance.now();
  const clock = { first: 0, reasoningStart: 0 };
  try {
    const res = await post(conv, msg, running.controller.signal);
    if (!res.ok) throw new Error(await errorText(res));
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        if (!line.startsWith('data:')) continue;   // SSE comments and blank separators
        const data = line.slice(5).trim();
        if (data && data !== '[DONE]') applyChunk(msg, JSON.parse(data), clock);
      }
      scheduleUpdate(conv, msg);
    }
  } catch (e) {
    if (e.name === 'AbortError') msg.stopped = true;
    else { msg.error = e.message; showError(e.message); }
  }
  finish(msg, clock, performance.now() - t0);
}

function applyChunk(msg, chunk, clock) {
  if (chunk.error) throw new Error(chunk.error.message || 'The server reported an error.');
  const now = performance.now();
  const choice = chunk.choices && chunk.choices[0];
  const delta = choice && choice.delta;
  msg.stats = msg.stats || { tokens: 0 };
  if (delta) {
    if (delta.reasoning_content) {
      if (!clock.reasoningStart) clock.reasoningStart = now;
      msg.reasoning += delta.reasoning_content;
      msg.reasoningChunks = (msg.reasoningChunks || 0) + 1;
    }
    if (delta.content) {
      endThinking(msg, clock, now);
      msg.content += delta.content;
    }
    for (const t of delta.tool_calls || []) {
      endThinking(msg, clock, now);
      msg.toolCalls = msg.toolCalls || [];
      const call = msg.toolCalls[t.index ?? 0] = msg.toolCalls[t.index ?? 0] || { id: '', name: '', arguments: '' };
      if (t.id) call.id = t.id;
      if (t.function && t.function.name) call.name = t.function.name;
      if (t.function && t.function.arguments) call.arguments += t.function.arguments;
    }
    if (delta.reasoning_content || delta.content || delta.tool_calls) {
      if (!clock.first) clock.first = now;
      msg.stats.tokens++;   // one chunk per token while streaming; usage replaces it at the end
    }
  }
  if (choice && choice.finish_reason) msg.stats.finish = choice.finish_reason;
  if (chunk.timings && chunk.timings.predicted_per_second) msg.stats.tps = chunk.timings.predicted_per_second;
  if (chunk.usage) {
    msg.stats.tokens = chunk.usage.completion_tokens;
    const details = chunk.usage.completion_tokens_details;
    if (details && details.reasoning_tokens) msg.reasoningTokens = details.reasoning_tokens;
  }
}

function endThinking(msg, clock, now) {
  if (clock.reasoningStart && !msg.reasoningMs) msg.reasoningMs = Math.max(1, now - clock.reasoningStart);
}

function finish(msg, clock, elapsed) {
  const now = performance.now();
  endThinking(msg, clock, now);
  msg.stats = msg.stats || { tokens: 0 };
  msg.stats.ms = Math.round(elapsed);
  // A stopped answer gets no server timings: measure from the first token instead.
  if (!msg.stats.tps && clock.first && msg.stats.tokens > 1 && now > clock.first)
    msg.stats.tps = (msg.stats.tokens - 1) / ((now - clock.first) / 1000);
  // Without usage (a stopped answer) the thinking's size is its chunk count, one per token.
  if (!msg.reasoningTokens && msg.reasoningChunks) msg.reasoningTokens = msg.reasoningChunks;
  delete msg.reasoningChunks;
}

let pendingFrame = 0;
function scheduleUpdate(conv, msg) {
  if (pendingFrame || conv !== current()) return;
  pendingFrame = requestAnimationFrame(() => {
    pendingFrame = 0;
    const stick = nearBottom();
    updateMessage(conv, msg);
    if (stick) scrollToBottom();
  });
}

// ---- settings, API key, theme --------------------------------------------------------------------------------------

const fields = { system: 'set-system', temperature: 'set-temperature', maxTokens: 'set-max-tokens', effort: 'set-effort', budget: 'set-budget', extra: 'set-extra' };

function openSettings() {
  for (const [k, id] of Object.entries(fields)) $(id).value = settings[k];
  $('set-extra-error').hidden = true;
  $('forget-key').hidden = !apiKey;
  ui.settings.showModal();
}

function saveSettings(e) {
  const next = {};
  for (const [k, id] of Object.entries(fields)) next[k] = $(id).value;
  if (parseExtra(next.extra) === null) {
    e.preventDefault();   // keep the dialog open until the JSON reads
    const err = $('set-extra-error');
    err.textContent = 'Extra request fields must be a JSON object, e.g. {"top_k": 40}.';
    err.hidden = false;
    return;
  }
  settings = next;
  store.save('lfm.settings', settings);
}

function askForKey() {
  return new Promise(resolve => {
    ui.keyInput.value = '';
    ui.keyDialog.querySelector('p').textContent = (apiKey ? 'The saved key was refused. ' : '') +
      'This server asks for an API key. It is kept in this browser and sent as "Authorization: Bearer".';
    ui.keyDialog.addEventListener('close', () => {
      const ok = ui.keyDialog.returnValue === 'ok' && ui.keyInput.value.trim();
      if (ok) { apiKey = ui.keyInput.value.trim(); store.save('lfm.apiKey', apiKey); }
      resolve(Boolean(ok));
    }, { once: true });
    ui.keyDialog.returnValue = '';
    ui.keyDialog.showModal();
  });
}

function toggleTheme() {
  const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
  document.documentElement.dataset.theme = next;
  try { localStorage.setItem('lfm.theme', next); } catch { /* the toggle still works for this visit */ }
}

async function loadModel() {
  for (;;) {
    try {
      const res = await fetch('/v1/models', { headers: headers() });
      if (res.status === 401) {
        if (await askForKey()) continue;
        ui.modelName.textContent = 'API key needed';
        return;
      }
      if (res.status === 503) {   // still loading the model
        ui.modelName.textContent = 'Loading model…';
        await new Promise(r => setTimeout(r, 1000));
        continue;
      }
      const json = await res.json();
      modelId = json.data && json.data[0] ? json.data[0].id : null;
      ui.modelName.textContent = modelId || '';
      return;
    } catch (e) {
      ui.modelName.textContent = 'Server unreachable';
      return;
    }
  }
}

// ---- wiring --------------------------------------------------------------------------------------------------------

ui.composer.addEventListener('submit', e => { e.preventDefault(); send(ui.input.value); });
ui.input.addEventListener('keydown', e => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(ui.input.value); }
});
ui.stop.addEventListener('click', () => running && running.controller.abort());
$('new-chat').addEventListener('click', newChat);
$('menu').addEventListener('click', () => { ui.sidebar.classList.add('open'); ui.scrim.hidden = false; });
ui.scrim.addEventListener('click', closeSidebar);
$('theme').addEventListener('click', toggleTheme);
$('open-settings').addEventListener('click', openSettings);
$('save-settings').addEventListener('click', saveSettings);
$('key-cancel').addEventListener('click', () => ui.keyDialog.close('cancel'));
$('forget-key').addEventListener('click', () => { apiKey = ''; store.save('lfm.apiKey', ''); $('forget-key').hidden = true; });
// Copy buttons of code blocks (rendered by markdown.js, which wires no events).
ui.messages.addEventListener('click', e => {
  const copy = e.target.closest('.code .copy');
  if (!copy) return;
  copyText(copy.closest('.code').querySelector('code').textContent);
  copy.textContent = 'Copied';
  setTimeout(() => { copy.textContent = 'Copy'; }, 1200);
});
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', e => {
  if (!localStorage.getItem('lfm.theme')) document.documentElement.dataset.theme = e.matches ? 'dark' : 'light';
});

if (currentId && !current()) currentId = null;
renderAll();
loadModel();
ui.input.focus();
