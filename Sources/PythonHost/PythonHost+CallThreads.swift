internal import CPython
import FuncdCore
import FuncdSystem


extension PythonHost {
    // MARK: - Call threads

    /// A call thread's life: take a call, run it with the GIL, park the answer in the outbox; hand
    /// the outbox back when the queue runs dry; release the GIL only when going idle.
    func callThreadLoop(_ callThread: CallThread, holdsGIL: Bool) {
        var holdsGIL = holdsGIL
        lock.lock()
        while true {
            guard queueHead < queue.count && inFlight < configuration.concurrency else {
                if !outbox.isEmpty {
                    handBack()
                    continue
                }
                if holdsGIL {
                    lock.unlock()
                    callThread.threadState = PyEval_SaveThread()
                    holdsGIL = false
                    lock.lock()
                    continue
                }
                callThread.idle = true
                if callThread.isMain {
                    mainIdle = true
                    while mainIdle { lock.wait(mainWake) }
                } else {
                    idleCallThreads += 1
                    lock.wait(workAvailable)
                    idleCallThreads -= 1
                }
                callThread.idle = false
                continue
            }
            let now = MonotonicClock.nanoseconds()
            if !outbox.isEmpty && now &- outboxSince >= Self.outboxDelayNanoseconds {
                // The next call may be slow: do not let earlier answers wait behind it.
                handBack()
                continue
            }
            let invocation = dequeue()
            inFlight += 1
            lastDequeue = now
            callThread.current = invocation
            callThread.currentSince = now
            callThread.interruptDue = false
            // More queued work and another idle call thread: let it help only if this call stalls
            // (the monitor decides), so the common case stays on one thread.
            lock.unlock()

            guard invocation.tryStart() else {
                // Its deadline passed while it waited; the caller already has its 408.
                lock.lock()
                callThread.current = nil
                inFlight -= 1
                continue
            }
            if !holdsGIL {
                PyEval_RestoreThread(callThread.threadState)
                holdsGIL = true
            }
            var finished = true
            if python!.isCoroutine {
                finished = runAsync(invocation)
            } else {
                if let record = invocation.kafka, let kafka {
                    invocation.complete(with: kafka.run(record, invocation))
                } else {
                    invocation.complete(with: python!.run(invocation))
                }
            }

            lock.lock()
            callThread.current = nil
            if callThread.interruptDue {
                // The interrupt may have been set after the handler returned: clear it so that
                // it does not hit the next call on this thread.
                callThread.interruptDue = false
                PyThreadState_SetAsyncExc(callThread.threadID, nil)
            }
            if finished {
                inFlight -= 1
                if outbox.isEmpty { outboxSince = MonotonicClock.nanoseconds() }
                outbox.append(invocation)
                if outbox.count >= Self.outboxBatchLimit { handBack() }
            }
        }
    }

    /// Starts an async handler; true when it finished at once (it failed before starting).
    private func runAsync(_ invocation: Invocation) -> Bool {
        let token = lock.withLock {
            let token = nextToken
            nextToken += 1
            asyncCalls[token] = invocation
            invocation.hostSlot = token
            return token
        }
        // The watchdog times a call out before it asks for the interrupt. A call already timed
        // out here may have been interrupted before its token existed (a cancel of nothing), so
        // it is not started; any later interrupt finds the token registered above.
        if invocation.currentState == .timedOut {
            _ = lock.withLock { asyncCalls.removeValue(forKey: token) }
            invocation.complete(with: InvocationResult(status: 408, error: "timed out before it started"))
            return true
        }
        guard let failed = python!.startAsync(invocation, token: token, complete: completeFunction!) else {
            return false
        }
        _ = lock.withLock { asyncCalls.removeValue(forKey: token) }
        invocation.complete(with: failed)
        return true
    }

    /// Called from the glue (asyncio thread, GIL held) when an async handler is done.
    func completeAsync(token: Int, result: PyPointer) {
        let converted = python!.convert(result)
        let (invocation, wakeMain): (Invocation?, Bool) = lock.withLock {
            guard let invocation = asyncCalls.removeValue(forKey: token) else { return (nil, false) }
            inFlight -= 1
            // A call may have waited for this slot (FUNC_CONCURRENCY): let the main thread take it.
            let wake = queueHead < queue.count && mainIdle
            if wake { mainIdle = false }
            return (invocation, wake)
        }
        if wakeMain { mainWake.signal() }
        guard let invocation else { return }
        invocation.complete(with: converted)
        invoker?.finished([invocation])
    }

    private func dequeue() -> Invocation {
        let invocation = queue[queueHead]
        queueHead += 1
        if queueHead == queue.count {
            queue.removeAll(keepingCapacity: true)
            queueHead = 0
        } else if queueHead >= 1024 && queueHead * 2 >= queue.count {
            queue.removeFirst(queueHead)
            queueHead = 0
        }
        return invocation
    }

    /// Hands the outbox to the Invoker. Called with `lock` held; returns with it held.
    func handBack() {
        let batch = outbox
        outbox.removeAll(keepingCapacity: true)
        lock.unlock()
        invoker?.finished(batch)
        lock.lock()
    }

    // MARK: - Monitor

    /// Wakes only while calls are queued or answers are parked; adds a call thread when the queue makes
    /// no progress (a handler blocks), and hands back answers a busy call thread is sitting on.
    func monitorLoop() {
        var tick = Self.stallNanoseconds
        // When the monitor last looked: a call taken or arrived since then is activity.
        var lastLook: UInt64 = 0
        lock.lock()
        while true {
            if queueHead >= queue.count && outbox.isEmpty && inFlight == 0 && lastDequeue <= lastLook {
                // Nothing running, and nothing taken since the last look: sleep until a submit
                // wakes us (it does so only now). Idling as soon as the queue ran dry got the
                // monitor woken by the next batch, hundreds of times a second under load.
                monitorIdle = true
                while monitorIdle { lock.wait(monitorWake) }
                tick = Self.stallNanoseconds
                continue
            }
            let now = MonotonicClock.nanoseconds()
            lastLook = now
            if !outbox.isEmpty && now &- outboxSince >= Self.stallNanoseconds {
                handBack()
                continue
            }
            // Help only when every awake call thread is inside a call that has run past the stall
            // threshold (blocked in I/O or sleep). A call thread that was woken but has not been
            // scheduled yet is not blocked: on a busy machine that can take milliseconds, and
            // new calls must keep going to the main thread, the one a signal can interrupt.
            let allBlocked = callThreads.allSatisfy { callThread in
                if callThread.current != nil {
                    let running = now &- callThread.currentSince
                    guard running >= Self.stallNanoseconds else { return false }
                    return running >= Self.computingStallNanoseconds || !isComputing(callThread, now: now)
                }
                // The main thread without a call is idle or being woken: it will take the queue.
                if callThread.isMain { return false }
                // An idle extra call thread is no obstacle (it can be woken); an awake one between
                // calls will take the queue itself.
                return callThread.idle
            }
            if queueHead < queue.count && inFlight < configuration.concurrency && allBlocked
                && now &- lastDequeue >= Self.stallNanoseconds
            {
                lastDequeue = now
                if mainIdle {
                    mainIdle = false
                    mainWake.signal()
                } else if idleCallThreads > 0 {
                    workAvailable.signal()
                } else if callThreads.count < configuration.concurrency {
                    startCallThread()
                }
            }
            tick = Self.nextMonitorTick(after: tick, settled: isSettled(now: now))
            lock.wait(monitorWake, untilNanoseconds: now &+ tick)
        }
    }

    /// The monitor's next sleep: twice the last, up to ``monitorLongestTickNanoseconds``, while
    /// every look finds the calls moving; the stall threshold again as soon as one does not.
    static func nextMonitorTick(after tick: UInt64, settled: Bool) -> UInt64 {
        settled ? min(tick &* 2, monitorLongestTickNanoseconds) : stallNanoseconds
    }

    /// Whether nothing waits on the monitor: no answer parked for as long as the stall threshold
    /// and, with calls queued, none left untaken and none running that long (a long call with
    /// nothing queued behind it needs no help). Called with `lock` held.
    private func isSettled(now: UInt64) -> Bool {
        if !outbox.isEmpty && now &- outboxSince >= Self.stallNanoseconds { return false }
        guard queueHead < queue.count else { return true }
        if now &- lastDequeue >= Self.stallNanoseconds { return false }
        return !callThreads.contains { $0.current != nil && now &- $0.currentSince >= Self.stallNanoseconds }
    }

    /// Whether `callThread` used most of the time since the monitor last looked on the CPU:
    /// then its call is computing, and a second thread would only take turns on the GIL with it.
    /// Called with `lock` held.
    func isComputing(_ callThread: CallThread, now: UInt64) -> Bool {
        var time = timespec()
        guard clock_gettime(callThread.cpuClock, &time) == 0 else { return false }
        let cpu = UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
        defer {
            callThread.cpuSeen = cpu
            callThread.cpuSeenAt = now
        }
        let wall = now &- callThread.cpuSeenAt
        guard callThread.cpuSeenAt != 0, wall > 0, wall < 10 * Self.stallNanoseconds else { return true }
        return (cpu &- callThread.cpuSeen) * 2 >= wall
    }

    /// Adds a call thread with its own persistent thread state. Called with `lock` held.
    private func startCallThread() {
        let callThread = CallThread(index: callThreads.count)
        callThreads.append(callThread)
        NativeThread.start(stackSize: 8 * 1024 * 1024) { [self] in
            callThread.threadState = PyThreadState_New(interpreterState)
            callThread.pthread = pthread_self()
            pthread_getcpuclockid(callThread.pthread, &callThread.cpuClock)
            PyEval_RestoreThread(callThread.threadState)
            callThread.threadID = PyThread_get_thread_ident()
            callThreadLoop(callThread, holdsGIL: true)
        }
    }

    // MARK: - Interrupter

    /// Stops handlers whose deadline passed: an asynchronous TimeoutError in the call's thread,
    /// plus a real signal when it is the main thread (the only thread where a blocking C call such
    /// as `time.sleep` can be broken), or a cancel for an `async def` handler.
    func interrupterLoop() {
        let threadState = PyThreadState_New(interpreterState)
        let interruptSignal = funcd_interrupt_signal()
        lock.lock()
        while true {
            guard !interrupts.isEmpty else {
                lock.wait(interruptWake)
                continue
            }
            let batch = interrupts
            interrupts.removeAll()
            lock.unlock()
            PyEval_RestoreThread(threadState)
            var mainCall: Invocation?
            for invocation in batch {
                if python!.isCoroutine {
                    // Written under the lock by runAsync; -1 when the call never got a token.
                    let token = lock.withLock { invocation.hostSlot }
                    if token >= 0 { python!.cancelAsync(token: token) }
                    continue
                }
                lock.withLock {
                    // Holding the GIL, the call thread cannot be between calls: if it still has this
                    // invocation, the exception lands in this invocation's handler.
                    guard let callThread = callThreads.first(where: { $0.current === invocation }) else { return }
                    callThread.interruptDue = true
                    PyThreadState_SetAsyncExc(callThread.threadID, funcd_py_timeout_error())
                    if callThread.isMain { mainCall = invocation }
                }
            }
            PyEval_SaveThread()
            if let mainCall {
                signalIfBlocked(mainCall, signal: interruptSignal, threadState: threadState)
            }
            lock.lock()
        }
    }

    /// The asynchronous exception is raised only when the thread runs Python code. If the main
    /// call thread is still on the call with the exception pending after a moment, it is blocked in C
    /// (`time.sleep`, a read): a real signal breaks the call and the glue's handler raises there.
    /// Sending it only then keeps a handler from being interrupted twice (say, in its `finally:`).
    private func signalIfBlocked(_ invocation: Invocation, signal: Int32, threadState: UnsafeMutablePointer<PyThreadState>?) {
        usleep(20_000)
        PyEval_RestoreThread(threadState)
        let target: pthread_t? = lock.withLock {
            guard let main = callThreads.first, main.current === invocation, main.interruptDue,
                let state = main.threadState, state.pointee.async_exc != nil
            else { return nil }
            return main.pthread
        }
        PyEval_SaveThread()
        if let target { pthread_kill(target, signal) }
    }

    /// For the glue's signal handler on the main thread (GIL held): is its current call one to
    /// stop? Answers yes once, and drops the pending asynchronous exception, so that the call is
    /// interrupted once.
    func mainInterruptDue() -> Bool {
        lock.withLock {
            guard let main = callThreads.first, main.interruptDue, main.current != nil else { return false }
            main.interruptDue = false
            PyThreadState_SetAsyncExc(main.threadID, nil)
            return true
        }
    }
}

// MARK: - Native functions the glue calls

/// `complete(token, result)`: an async handler finished.
func pythonComplete(_ module: PyPointer?, _ arguments: PyPointer?) -> PyPointer? {
    if let arguments, PyTuple_Size(arguments) == 2,
        let tokenObject = PyTuple_GetItem(arguments, 0),
        let result = PyTuple_GetItem(arguments, 1)
    {
        let token = PyLong_AsLong(tokenObject)
        PythonHost.shared?.completeAsync(token: token, result: result)
    }
    PyErr_Clear()
    return PythonObjects.newNone()
}

/// `interrupt_due()`: asked by the interrupt signal's Python handler on the main thread.
func pythonInterruptDue(_ module: PyPointer?, _ arguments: PyPointer?) -> PyPointer? {
    let due = PythonHost.shared?.mainInterruptDue() ?? false
    return PyBool_FromLong(due ? 1 : 0)
}
