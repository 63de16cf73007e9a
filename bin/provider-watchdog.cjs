// Loaded (node --require) into the engine's Node dynamic-provider host by muster's launcher
// (pulumi-resource-pulumi-nodejs). When the engine that started the host dies without stopping it
// (its muster was killed with kill -9, and the engine with it), nothing else ever will: the host
// ends itself once no command of muster's runs in it (shell-command.ts counts them in
// globalThis.musterRunningCommands; a running bake is let finish, so its image can be adopted).
'use strict'
const engine = process.ppid
const timer = setInterval(() => {
  if (process.ppid === engine) return
  if ((globalThis.musterRunningCommands || 0) > 0) return
  process.exit(1)
}, 1000)
timer.unref()
