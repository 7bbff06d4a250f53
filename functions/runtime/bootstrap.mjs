// The Node.js runtime's bootstrap: loads the handler once, then serves invocations until told to stop.
//
// Runs in the sandbox as `node --max-old-space-size=MB bootstrap.mjs CODE_DIR HANDLER`. Events arrive on
// fd 3 as `<length> <request id> <deadline, epoch ms> <working dir>\n` followed by the event's JSON; each
// answer is one JSON line on fd 4: {"ready": ...} once, then per invocation {"ok": true, "result": ...} or
// {"ok": false, "error": {"errorType", "errorMessage", "trace"}}. The protocol is the Python bootstrap's
// (bootstrap.py). Writes to stdout and stderr are synchronous on pipes (Linux), so a handler's output is in
// the runner's pipe before its answer is.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const EVENTS = 3;
const RESULTS = 4;
const [codeDir, handler] = process.argv.slice(2);

function errorDocument(error, errorType) {
  const isError = error instanceof Error;
  return {
    errorType: errorType || (isError ? error.name : "Error"),
    errorMessage: isError ? error.message : String(error),
    trace: isError && error.stack ? error.stack.split("\n") : [],
  };
}

function answer(document) {
  let data = Buffer.from(JSON.stringify(document) + "\n");
  while (data.length) data = data.subarray(fs.writeSync(RESULTS, data));
}

function readExactly(count) {
  const buffer = Buffer.alloc(count);
  let offset = 0;
  while (offset < count) {
    const read = fs.readSync(EVENTS, buffer, offset, count - offset, null);
    if (read === 0) return null;
    offset += read;
  }
  return buffer;
}

function readHeader() {
  const bytes = [];
  const one = Buffer.alloc(1);
  for (;;) {
    if (fs.readSync(EVENTS, one, 0, 1, null) === 0) return null;
    if (one[0] === 10) break;
    bytes.push(one[0]);
  }
  return Buffer.from(bytes).toString().split(" ");
}

function isOutOfMemory(error) {
  return error instanceof RangeError && /allocation failed|out of memory/i.test(error.message);
}

class LoadError extends Error {
  constructor(errorType, message) {
    super(message);
    this.errorType = errorType;
  }
}

async function load() {
  const dot = handler.lastIndexOf(".");
  const moduleName = handler.slice(0, dot);
  const functionName = handler.slice(dot + 1);
  const file = [".js", ".mjs", ".cjs"].map((extension) => path.join(codeDir, moduleName + extension)).find(fs.existsSync);
  if (!file) throw new LoadError("Runtime.ImportModuleError", `Cannot find module '${moduleName}'`);
  let module;
  try {
    module = await import(pathToFileURL(file).href);
  } catch (error) {
    if (error instanceof SyntaxError) throw new LoadError("Runtime.UserCodeSyntaxError", `${error.name}: ${error.message}`);
    if (error && (error.code === "ERR_MODULE_NOT_FOUND" || error.code === "MODULE_NOT_FOUND")) {
      throw new LoadError("Runtime.ImportModuleError", `Error: ${error.message}`);
    }
    throw error;
  }
  const fn = module[functionName] ?? module.default?.[functionName];
  if (typeof fn !== "function") throw new LoadError("Runtime.HandlerNotFound", `${handler} is undefined or not exported`);
  return fn;
}

function call(fn, event, context) {
  if (fn.length >= 3) {
    return new Promise((resolve, reject) => {
      const result = fn(event, context, (error, value) => (error ? reject(error) : resolve(value)));
      if (result && typeof result.then === "function") result.then(resolve, reject);
    });
  }
  return Promise.resolve().then(() => fn(event, context));
}

let inFlight = false;
for (const signal of ["uncaughtException", "unhandledRejection"]) {
  process.on(signal, (error) => {
    if (inFlight) answer({ ok: false, error: errorDocument(error, isOutOfMemory(error) ? "Runtime.OutOfMemory" : undefined), fatal: true });
    else process.stderr.write(`${signal}: ${error && error.stack ? error.stack : error}\n`);
    process.exit(1);
  });
}

async function main() {
  let fn;
  try {
    fn = await load();
  } catch (error) {
    const errorType = error instanceof LoadError ? error.errorType : isOutOfMemory(error) ? "Runtime.OutOfMemory" : "Runtime.InitError";
    answer({ ready: false, error: errorDocument(error, errorType) });
    return;
  }
  answer({ ready: true });
  const env = process.env;
  for (;;) {
    const header = readHeader();
    if (header === null) return;
    const [length, requestId, deadline, workdir] = header;
    const body = readExactly(Number(length));
    if (body === null) return;
    process.chdir(workdir);
    const deadlineMs = Number(deadline);
    const context = {
      awsRequestId: requestId,
      functionName: env.AWS_LAMBDA_FUNCTION_NAME,
      functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
      memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      invokedFunctionArn: "",
      logGroupName: "",
      logStreamName: "",
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => Math.max(0, deadlineMs - Date.now()),
    };
    inFlight = true;
    try {
      const result = await call(fn, JSON.parse(body.toString()), context);
      let text;
      try {
        text = JSON.stringify(result === undefined ? null : result);
      } catch (error) {
        answer({ ok: false, error: errorDocument(error, "Runtime.MarshalError") });
        continue;
      }
      let data = Buffer.from(`{"ok":true,"result":${text}}\n`);
      while (data.length) data = data.subarray(fs.writeSync(RESULTS, data));
    } catch (error) {
      const outOfMemory = isOutOfMemory(error);
      answer({ ok: false, error: errorDocument(error, outOfMemory ? "Runtime.OutOfMemory" : undefined), fatal: outOfMemory });
      if (outOfMemory) process.exit(1);
    } finally {
      inFlight = false;
    }
  }
}

main();
