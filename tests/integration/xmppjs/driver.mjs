// xmpp.js (@xmpp/client 0.14.0) remote control for the s2proxy integration tests.
//
// One process drives any number of named xmpp.js clients. Commands arrive on
// stdin, one JSON object a line; each gets exactly one JSON answer line on
// stdout with the same "id":
//   -> {"id": 1, "op": "start", "name": "a", "service": "xmpp://127.0.0.1:36222", ...}
//   <- {"id": 1, "ok": true, "result": {...}}      or {"id": 1, "ok": false, "error": "...", "result": {...}}
// Nothing else is written to stdout (diagnostics go to stderr). Every wait is
// bounded by the command's "timeout" (ms). The Python side is jsclient.py.
//
// ops (all but "exit" take "name"):
//   start    {service, domain, username, password, resource, userAgentId, software?, device?,
//             token?: {mechanism, token, expiry} | null, smId?, smInbound?, csi?, timeout?}
//            csi: "active" | "inactive" sent inline in Bind2 when the server offers CSI there
//            creates a client (automatic reconnect off), records a trace of every element in and
//            out plus stream status changes, starts it and waits until it is online.
//            result: state (see "state"); on failure ok=false and the error text.
//   state    -> {status, jid, sm: {enabled, id, inbound, outbound}, token (last saved), tokenDeleted}
//   trace    {since?} -> {log: [{n, t, dir: "in"|"out"|"status"|"raw", x}]}
//            x: element XML, status name, or (raw) the received bytes as they came
//   send     {xml}  sends one element given as XML text
//   ping     {to?, timeout?} XEP-0199 ping through the iq caller -> {ms}
//   messages {} -> {messages: [xml, ...]} every <message/> received so far
//   wait_message {body, timeout?} -> {message: xml, count} waits until a message with that body came
//   cut      {} destroys the TCP socket under the (TLS) stream: no </stream:stream>, no close_notify
//   reconnect {smId?, timeout?} opens a new TCP connection + stream with the client's state (SM id,
//            h, token): xmpp.js resumes inline in SASL2 when it holds an SM id. Waits until online
//            or resumed. smId overrides the SM id first (unknown previd tests).
//   stop     {timeout?} graceful </stream:stream>
//   exit     {} stops every client and exits
import { client, xml } from "@xmpp/client";
import parse from "@xmpp/xml/lib/parse.js";
import { createInterface } from "node:readline";

const clients = new Map();
const T0 = performance.now();

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, rej) => {
      timer = setTimeout(() => rej(new Error(`timeout after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function makeClient(args) {
  const st = {
    name: args.name,
    log: [],
    n: 0,
    saved: null,
    tokenDeleted: false,
    rawSocket: null,
    messages: [],
    errors: [],
  };
  const userAgent = xml(
    "user-agent",
    { id: args.userAgentId },
    xml("software", {}, args.software || "s2proxy-it"),
    xml("device", {}, args.device || "pytest"),
  );
  const c = client({
    service: args.service,
    domain: args.domain,
    username: args.username,
    password: args.password,
    resource: args.resource,
    userAgent,
  });
  c.reconnect.stop(); // the tests decide when to reconnect
  // Bind2 inline CSI (XEP-0386 §3.2): <active/> or <inactive/> inside <bind/>, when offered
  if (args.csi) c.bind2.use("urn:xmpp:csi:0", async () => xml(args.csi, { xmlns: "urn:xmpp:csi:0" }));
  st.c = c;
  const rec = (dir, x) => st.log.push({ n: st.n++, t: Math.round((performance.now() - T0) * 10) / 10, dir, x });
  // the bytes as they came (after TLS), for post-mortems of what the parser made of them
  const onData = c._onData.bind(c);
  // Node's TLS socket can deliver already-received data synchronously from inside a write(); if
  // xmpp.js writes while its parser is emitting an element, the parser is re-entered and its state
  // corrupted (seen with <resumed/> in SASL2 <success/>: stream-management's resumed() writes).
  // Record it, with the writer, so a failure says why.
  let inData = false;
  c._onData = (data) => {
    rec("raw", data.toString("utf8"));
    if (inData) {
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 40;
      const stack = new Error().stack || "";
      Error.stackTraceLimit = limit;
      const frames = stack.split("\n").filter((l) => /@xmpp\/(?!connection|tls|xml|events)/.test(l));
      rec("status", "RE-ENTERED: socket data delivered inside a write while xmpp.js was handling an element; " +
        "the XML parser state is now corrupt; writer: " + frames.slice(0, 4).map((l) => l.trim().replace(/\(.*node_modules\//, "(")).join(" < "));
    }
    inData = true;
    try {
      onData(data);
    } finally {
      inData = false;
    }
  };
  c.on("element", (el) => {
    rec("in", el.toString());
    if (el.name === "message") st.messages.push(el);
  });
  c.on("send", (el) => rec("out", el.toString()));
  c.on("status", (s) => {
    rec("status", s);
    // remember the plain TCP socket (STARTTLS wraps it later) so "cut" can destroy it
    if (s === "connect" && c.socket && typeof c.socket.destroy === "function") st.rawSocket = c.socket;
  });
  c.on("error", (e) => {
    st.errors.push(String(e?.message || e));
    rec("status", "error: " + String(e?.condition || "") + " " + String(e?.message || e));
  });
  const token = args.token || null;
  c.fast.fetchToken = async () => token;
  c.fast.saveToken = async (t) => {
    st.saved = t;
  };
  c.fast.deleteToken = async () => {
    st.tokenDeleted = true;
  };
  if (args.smId) {
    c.streamManagement.id = args.smId;
    c.streamManagement.inbound = args.smInbound || 0;
  }
  return st;
}

function state(st) {
  const c = st.c;
  const sm = c.streamManagement;
  return {
    status: c.status,
    jid: c.jid ? c.jid.toString() : null,
    sm: { enabled: sm.enabled, id: sm.id, inbound: sm.inbound, outbound: sm.outbound, queued: sm.outbound_q.length },
    token: st.saved,
    tokenDeleted: st.tokenDeleted,
    errors: st.errors,
  };
}

function get(name) {
  const st = clients.get(name);
  if (!st) throw new Error(`no client named ${name}`);
  return st;
}

function bodyOf(el) {
  return el.getChildText("body");
}

// resolves when the client is usable again after a reconnect: "online" after a bind, or the SM
// "resumed" event (xmpp.js sets the status silently on resume)
function onlineOrResumed(st) {
  const c = st.c;
  return new Promise((resolve, reject) => {
    const done = (how) => {
      c.removeListener("online", onOnline);
      c.streamManagement.removeListener("resumed", onResumed);
      c.removeListener("error", onError);
      resolve(how);
    };
    const onOnline = () => done("online");
    const onResumed = () => done("resumed");
    const onError = (e) => {
      // an authentication failure ends the attempt (xmpp.js itself handles a refused FAST token
      // without an "error": it falls back to the password)
      if (e && e.name === "SASLError") {
        c.removeListener("online", onOnline);
        c.streamManagement.removeListener("resumed", onResumed);
        c.removeListener("error", onError);
        reject(e);
      }
    };
    c.on("online", onOnline);
    c.streamManagement.on("resumed", onResumed);
    c.on("error", onError);
  });
}

// xmpp.js Connection.open() writes the stream header and only then waits for the server's header
// (2 s). A fast server's header can arrive before that write's callback (seen on direct TLS), so
// open() -- and start() / reconnect() with it -- rejects with a TimeoutError although the stream
// goes on and the client gets online. Apps listen for "online"; so do we: such a TimeoutError is
// noted in the trace and otherwise ignored (every wait here is bounded anyway).
function tolerateOpenRace(st, promise) {
  return promise.then(
    () => new Promise(() => {}),
    (e) => {
      if (e?.name !== "TimeoutError") throw e;
      st.log.push({ n: st.n++, t: Math.round((performance.now() - T0) * 10) / 10, dir: "status",
        x: "note: xmpp.js open() timed out waiting for a stream header it had already received (xmpp.js race); waiting for online" });
      return new Promise(() => {});
    },
  );
}

const ops = {
  async start(a) {
    if (clients.has(a.name)) throw new Error(`client ${a.name} exists`);
    const st = makeClient(a);
    clients.set(a.name, st);
    const timeout = a.timeout || 10000;
    const online = new Promise((resolve) => st.c.once("online", resolve));
    try {
      await withTimeout(Promise.race([online, tolerateOpenRace(st, st.c.start())]), timeout, `start ${a.name}`);
    } catch (e) {
      // leave the socket closed, not half-open
      try {
        st.rawSocket?.destroy();
      } catch {}
      const err = new Error(`${e?.condition ? e.condition + ": " : ""}${e?.message || e}`);
      err.result = state(st);
      throw err;
    }
    // inline SM: <enabled/> is handled while <success> is processed; give it a moment anyway
    for (let i = 0; i < 20 && !st.c.streamManagement.enabled; i++) await sleep(10);
    return state(st);
  },
  async state(a) {
    return state(get(a.name));
  },
  async trace(a) {
    const st = get(a.name);
    return { log: st.log.filter((e) => e.n >= (a.since || 0)) };
  },
  async send(a) {
    const st = get(a.name);
    await withTimeout(st.c.send(parse(a.xml)), a.timeout || 5000, "send");
    return {};
  },
  async ping(a) {
    const st = get(a.name);
    const t = performance.now();
    await st.c.iqCaller.request(
      xml("iq", { type: "get", to: a.to || st.c.options.domain }, xml("ping", { xmlns: "urn:xmpp:ping" })),
      a.timeout || 5000,
    );
    return { ms: Math.round(performance.now() - t) };
  },
  async messages(a) {
    return { messages: get(a.name).messages.map((m) => m.toString()) };
  },
  async wait_message(a) {
    const st = get(a.name);
    const end = performance.now() + (a.timeout || 5000);
    for (;;) {
      const hits = st.messages.filter((m) => bodyOf(m) === a.body);
      if (hits.length) return { message: hits[0].toString(), count: hits.length };
      if (performance.now() >= end) {
        const err = new Error(`no message with body ${JSON.stringify(a.body)} within ${a.timeout || 5000} ms`);
        err.result = { got: st.messages.map((m) => m.toString()).slice(-8) };
        throw err;
      }
      await sleep(20);
    }
  },
  async cut(a) {
    const st = get(a.name);
    const c = st.c;
    if (!st.rawSocket) throw new Error("no TCP socket to cut");
    const closed = new Promise((r) => c.once("disconnect", r));
    st.rawSocket.destroy(); // FIN from the kernel; no </stream:stream>, no TLS close_notify
    st.rawSocket = null;
    await withTimeout(closed, a.timeout || 3000, "disconnect after cut");
    return state(st);
  },
  async reconnect(a) {
    const st = get(a.name);
    const c = st.c;
    if (a.smId !== undefined) c.streamManagement.id = a.smId;
    const mark = st.n;
    const ready = onlineOrResumed(st);
    ready.catch(() => {});
    try {
      await withTimeout(
        (async () => {
          await Promise.race([ready, tolerateOpenRace(st, c.reconnect.reconnect())]);
          return ready;
        })(),
        a.timeout || 10000,
        `reconnect ${a.name}`,
      );
    } catch (e) {
      const err = new Error(`${e?.condition ? e.condition + ": " : ""}${e?.message || e}`);
      err.result = state(st);
      throw err;
    }
    const how = await ready;
    return { ...state(st), how, mark };
  },
  async stop(a) {
    const st = get(a.name);
    try {
      await withTimeout(st.c.stop(), a.timeout || 3000, `stop ${a.name}`);
    } catch (e) {
      try {
        st.c.socket?.socket?.destroy?.();
        st.rawSocket?.destroy();
      } catch {}
      return { ...state(st), clean: false, error: String(e?.message || e) };
    }
    return { ...state(st), clean: true };
  },
  async exit() {
    await Promise.all(
      [...clients.values()].map((st) =>
        withTimeout(st.c.stop(), 2000, "stop").catch(() => {
          try {
            st.rawSocket?.destroy();
          } catch {}
        }),
      ),
    );
    out({ id: exitId, ok: true, result: {} });
    process.exit(0);
  },
};

let exitId = null;
const rl = createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    out({ id: null, ok: false, error: "bad JSON: " + e.message });
    return;
  }
  const f = ops[cmd.op];
  if (!f) {
    out({ id: cmd.id, ok: false, error: "unknown op " + cmd.op });
    return;
  }
  if (cmd.op === "exit") exitId = cmd.id;
  try {
    out({ id: cmd.id, ok: true, result: (await f(cmd)) ?? {} });
  } catch (e) {
    out({ id: cmd.id, ok: false, error: String(e?.message || e), result: e?.result ?? null });
  }
});
rl.on("close", () => {
  // the test runner went away: do not linger
  for (const st of clients.values()) {
    try {
      st.rawSocket?.destroy();
    } catch {}
  }
  process.exit(0);
});
// xmpp.js can throw from a socket callback (e.g. data arriving after its parser was detached):
// record it in every client's trace and keep serving commands, so the test sees what happened
function uncaught(kind) {
  return (e) => {
    const text = `${kind}: ${e?.stack || e}`;
    process.stderr.write(text + "\n");
    for (const st of clients.values()) st.log.push({ n: st.n++, t: Math.round((performance.now() - T0) * 10) / 10, dir: "status", x: text.split("\n").slice(0, 3).join(" | ") });
  };
}
process.on("unhandledRejection", uncaught("unhandledRejection"));
process.on("uncaughtException", uncaught("uncaughtException"));
