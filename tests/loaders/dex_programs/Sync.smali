# four threads add to a synchronized counter and an AtomicInteger; main joins them and prints both
.class public LSync;
.super Ljava/lang/Object;
.implements Ljava/lang/Runnable;

.field static counter:I
.field static final lock:Ljava/lang/Object;
.field static atomic:Ljava/util/concurrent/atomic/AtomicInteger;

.method static constructor <clinit>()V
    .registers 1
    new-instance v0, Ljava/lang/Object;
    invoke-direct {v0}, Ljava/lang/Object;-><init>()V
    sput-object v0, LSync;->lock:Ljava/lang/Object;
    new-instance v0, Ljava/util/concurrent/atomic/AtomicInteger;
    invoke-direct {v0}, Ljava/util/concurrent/atomic/AtomicInteger;-><init>()V
    sput-object v0, LSync;->atomic:Ljava/util/concurrent/atomic/AtomicInteger;
    return-void
.end method

.method public constructor <init>()V
    .registers 1
    invoke-direct {p0}, Ljava/lang/Object;-><init>()V
    return-void
.end method

.method public run()V
    .registers 5
    const/4 v0, 0
    :loop
    const/16 v1, 250
    if-ge v0, v1, :done
    sget-object v1, LSync;->lock:Ljava/lang/Object;
    monitor-enter v1
    :s
    sget v2, LSync;->counter:I
    add-int/lit8 v2, v2, 1
    sput v2, LSync;->counter:I
    monitor-exit v1
    :e
    .catchall {:s .. :e} :unlock
    sget-object v2, LSync;->atomic:Ljava/util/concurrent/atomic/AtomicInteger;
    invoke-virtual {v2}, Ljava/util/concurrent/atomic/AtomicInteger;->incrementAndGet()I
    add-int/lit8 v0, v0, 1
    goto :loop
    :done
    return-void
    :unlock
    move-exception v3
    monitor-exit v1
    throw v3
.end method

.method public static main([Ljava/lang/String;)V
    .registers 6
    const/4 v0, 4
    new-array v1, v0, [Ljava/lang/Thread;
    const/4 v2, 0
    :start
    if-ge v2, v0, :started
    new-instance v3, Ljava/lang/Thread;
    new-instance v4, LSync;
    invoke-direct {v4}, LSync;-><init>()V
    invoke-direct {v3, v4}, Ljava/lang/Thread;-><init>(Ljava/lang/Runnable;)V
    aput-object v3, v1, v2
    invoke-virtual {v3}, Ljava/lang/Thread;->start()V
    add-int/lit8 v2, v2, 1
    goto :start
    :started
    const/4 v2, 0
    :join
    if-ge v2, v0, :joined
    aget-object v3, v1, v2
    invoke-virtual {v3}, Ljava/lang/Thread;->join()V
    add-int/lit8 v2, v2, 1
    goto :join
    :joined
    sget-object v3, Ljava/lang/System;->out:Ljava/io/PrintStream;
    sget v4, LSync;->counter:I
    invoke-virtual {v3, v4}, Ljava/io/PrintStream;->println(I)V
    sget-object v4, LSync;->atomic:Ljava/util/concurrent/atomic/AtomicInteger;
    invoke-virtual {v3, v4}, Ljava/io/PrintStream;->println(Ljava/lang/Object;)V
    return-void
.end method
