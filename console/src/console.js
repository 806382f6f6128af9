// The dev console served at `/`: lists and cancels sessions, chats with the bot over a
// WebSocket session and talks to it over WebRTC, all through Pipecat's client SDK.
// Built with esbuild into app/console/static/console.js (`npm run build`); nothing is loaded
// from a CDN: both transports get a media manager that runs in the page (WavMediaManager)
// instead of their default, which loads Daily's call machine from the network.
import { PipecatClient } from "@pipecat-ai/client-js";
import { WebSocketTransport, WavMediaManager } from "@pipecat-ai/websocket-transport";
import {
  SmallWebRTCTransport,
  WavMediaManager as WebRTCWavMediaManager,
} from "@pipecat-ai/small-webrtc-transport";

const KEY_STORAGE = "botdock.apiKey";
const $ = (id) => document.getElementById(id);

const state = { settings: null, chat: null, chatReady: false, talk: null };

// ---- the API key: asked for when the server needs it, kept for this tab only ----------------

function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

// ---- the log ---------------------------------------------------------------------------------

function log(kind, text) {
  const line = document.createElement("li");
  line.className = kind;
  line.dataset.kind = kind;
  line.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  $("log").prepend(line);
}

function describe(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

async function errorText(response) {
  try {
    const body = await response.json();
    return `${response.status} ${body.error ?? ""}: ${body.detail ?? describe(body)}`;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

// ---- sessions --------------------------------------------------------------------------------

async function refreshSessions() {
  const response = await fetch("/sessions", { headers: authHeaders() });
  const body = $("sessions-body");
  if (!response.ok) {
    $("sessions-status").textContent = `cannot list sessions: ${await errorText(response)}`;
    body.replaceChildren();
    return;
  }
  const { sessions } = await response.json();
  $("sessions-status").textContent = `${sessions.length} active`;
  body.replaceChildren(
    ...sessions.map((session) => {
      const row = document.createElement("tr");
      row.dataset.sessionId = session.sessionId;
      for (const value of [
        session.sessionId,
        session.kind,
        session.state,
        `${session.ageSecs.toFixed(1)} s`,
      ]) {
        const cell = document.createElement("td");
        cell.textContent = value;
        row.append(cell);
      }
      const cancel = document.createElement("button");
      cancel.textContent = "Cancel";
      cancel.className = "cancel";
      cancel.onclick = () => cancelSession(session.sessionId);
      const cell = document.createElement("td");
      cell.append(cancel);
      row.append(cell);
      return row;
    }),
  );
}

async function cancelSession(id) {
  const response = await fetch(`/sessions/${encodeURIComponent(id)}`, {
    method: "DELETE",
    headers: authHeaders(),
  });
  if (response.ok) log("info", `session ${id}: cancel requested`);
  else log("error", `cancel ${id}: ${await errorText(response)}`);
  await refreshSessions();
}

// ---- client callbacks shared by both transports ----------------------------------------------

function callbacks(which, stateElement) {
  return {
    onTransportStateChanged: (transportState) => {
      $(stateElement).textContent = transportState;
      log("state", `${which}: transport ${transportState}`);
      if (transportState === "disconnected" || transportState === "error") {
        if (which === "chat") endChat();
        else endTalk();
        refreshSessions();
      }
    },
    onBotStarted: () => refreshSessions(),
    onBotReady: (data) => {
      if (which === "chat") state.chatReady = true;
      log("bot", `${which}: bot-ready ${describe(data)}`);
    },
    onServerMessage: (data) => log("bot", `${which}: server-message ${describe(data)}`),
    onError: (message) => log("error", `${which}: ${describe(message.data ?? message)}`),
    onMessageError: (message) => log("error", `${which}: ${describe(message.data ?? message)}`),
    onTrackStarted: (track, participant) => {
      if (which === "talk" && track.kind === "audio" && participant && !participant.local) {
        $("bot-audio").srcObject = new MediaStream([track]);
        log("info", "talk: bot audio playing");
      }
    },
  };
}

// The transport hands the client every RTVI message the bot sends; the console logs each one,
// so a bot that speaks no RTVI (an echo bot) still shows what it sent back.
function logInbound(which, handler) {
  return (message) => {
    log("bot", `${which}: received ${message.type} ${describe(message.data)}`);
    handler(message);
  };
}

// ---- chat over a WebSocket session -----------------------------------------------------------

// A media manager for text chat: plays the bot's audio, never asks for the microphone.
class ChatMediaManager extends WavMediaManager {
  async initialize() {
    await this._wavStreamPlayer.connect();
    this._initialized = true;
  }

  async disconnect() {
    if (this._initialized) await this._wavStreamPlayer.interrupt();
    this._initialized = false;
  }
}

// The websocket transport reports a close by its code only; the console also shows the reason.
class ConsoleWebSocketTransport extends WebSocketTransport {
  initialize(options, handler) {
    super.initialize(options, logInbound("chat", handler));
  }

  initializeWebsocket() {
    const socket = super.initializeWebsocket();
    socket.on("close", (code, reason) => {
      $("chat-close").textContent = `closed: ${code}${reason ? ` ${reason}` : ""}`;
      log("error", `chat: socket closed by the server: ${code}${reason ? ` ${reason}` : ""}`);
    });
    return socket;
  }
}

async function startChat() {
  if (state.chat) return;
  $("chat-close").textContent = "";
  state.chatReady = false;
  const client = new PipecatClient({
    transport: new ConsoleWebSocketTransport({ mediaManager: new ChatMediaManager() }),
    enableMic: false,
    enableCam: false,
    callbacks: callbacks("chat", "chat-state"),
  });
  state.chat = client;
  window.botdockConsole.chat = client;
  setChatButtons(true);
  try {
    // Resolves on bot-ready; an echo bot sends none, and the chat works without it.
    await client.startBotAndConnect({
      endpoint: "/start",
      headers: new Headers(authHeaders()),
      requestData: { transport: "websocket" },
    });
  } catch (error) {
    log("error", `chat: ${error.message ?? error}`);
    endChat();
  }
}

function endChat() {
  if (!state.chat) return;
  const client = state.chat;
  state.chat = null;
  state.chatReady = false;
  setChatButtons(false);
  if (client.state !== "disconnected") client.disconnect().catch(() => {});
}

async function sendChat(event) {
  event.preventDefault();
  const text = $("chat-text").value;
  const type = $("chat-type").value || "chat";
  if (!state.chat || !text) return;
  log("you", `chat: ${type} ${describe({ text })}`);
  $("chat-text").value = "";
  try {
    if (state.chatReady) {
      // An RTVI bot answers a client request with a server-response.
      const answer = await state.chat.sendClientRequest(type, { text }, 10000);
      log("bot", `chat: response ${describe(answer)}`);
    } else {
      state.chat.sendClientMessage(type, { text });
    }
  } catch (error) {
    log("error", `chat: ${describe(error.message ?? error.data ?? error)}`);
  }
}

function setChatButtons(running) {
  $("chat-start").disabled = running;
  $("chat-stop").disabled = !running;
  $("chat-send").disabled = !running;
}

// ---- talking over WebRTC ---------------------------------------------------------------------

async function startTalk() {
  if (state.talk) return;
  const client = new PipecatClient({
    transport: new SmallWebRTCTransport({ mediaManager: new WebRTCWavMediaManager() }),
    enableMic: true,
    enableCam: false,
    callbacks: callbacks("talk", "talk-state"),
  });
  state.talk = client;
  window.botdockConsole.talk = client;
  $("talk-start").disabled = true;
  $("talk-stop").disabled = false;
  try {
    await client.startBotAndConnect({
      endpoint: "/start",
      headers: new Headers(authHeaders()),
      requestData: { transport: "webrtc" },
    });
  } catch (error) {
    log("error", `talk: ${error.message ?? error}`);
    endTalk();
  }
}

function endTalk() {
  if (!state.talk) return;
  const client = state.talk;
  state.talk = null;
  $("talk-start").disabled = false;
  $("talk-stop").disabled = true;
  if (client.state !== "disconnected") client.disconnect().catch(() => {});
}

// ---- start-up --------------------------------------------------------------------------------

async function loadSettings() {
  const response = await fetch("/console/settings");
  state.settings = await response.json();
  $("key-panel").hidden = !state.settings.apiKeyRequired;
  $("key-status").textContent = apiKey() ? "key set for this tab" : "no key yet";
  if (state.settings.webrtc) {
    $("talk-start").disabled = false;
    $("talk-note").textContent = "Microphone in, the bot's audio out.";
  } else {
    $("talk-start").disabled = true;
    $("talk-note").textContent =
      "WebRTC is not available on this server: it needs Pipecat's SmallWebRTC transport " +
      '(pipecat-ai[webrtc], in the pipecat group: "uv sync --group pipecat").';
  }
}

function saveKey(event) {
  event.preventDefault();
  sessionStorage.setItem(KEY_STORAGE, $("key").value);
  $("key").value = "";
  $("key-status").textContent = "key set for this tab";
  refreshSessions();
}

// The running clients, and the SDK classes as the console configures them, for scripting from
// the browser's devtools (and the browser tests).
window.botdockConsole = {
  chat: null,
  talk: null,
  sdk: { PipecatClient, WebSocketTransport, ChatMediaManager, SmallWebRTCTransport, WebRTCWavMediaManager },
};
// Closing the tab ends the sessions at once: a peer connection closed here tells the bot so
// right away, instead of after its ICE consent runs out (about 30 s).
window.addEventListener("pagehide", () => {
  endChat();
  endTalk();
});
$("key-form").onsubmit = saveKey;
$("sessions-refresh").onclick = refreshSessions;
$("chat-start").onclick = startChat;
$("chat-stop").onclick = endChat;
$("chat-form").onsubmit = sendChat;
$("talk-start").onclick = startTalk;
$("talk-stop").onclick = endTalk;
setChatButtons(false);
await loadSettings();
await refreshSessions();
document.body.dataset.ready = "true";
