.class public LWorker;
.super Ljava/lang/Thread;

.field static runs:I
.field explode:Z

.method public constructor <init>()V
    .registers 1
    invoke-direct {p0}, Ljava/lang/Thread;-><init>()V
    return-void
.end method

.method public static square(I)I
    .registers 2
    mul-int v0, p0, p0
    return v0
.end method

.method public greet(Ljava/lang/String;)Ljava/lang/String;
    .registers 3
    const-string v0, "hello, "
    invoke-virtual {v0, p1}, Ljava/lang/String;->concat(Ljava/lang/String;)Ljava/lang/String;
    move-result-object v0
    return-object v0
.end method

.method public fail()V
    .registers 3
    new-instance v0, Ljava/lang/UnsupportedOperationException;
    const-string v1, "not today"
    invoke-direct {v0, v1}, Ljava/lang/UnsupportedOperationException;-><init>(Ljava/lang/String;)V
    throw v0
.end method

.method public run()V
    .registers 4
    sget v0, LWorker;->runs:I
    add-int/lit8 v0, v0, 1
    sput v0, LWorker;->runs:I
    sget-object v0, Ljava/lang/System;->out:Ljava/io/PrintStream;
    invoke-static {}, Ljava/lang/Thread;->currentThread()Ljava/lang/Thread;
    move-result-object v1
    invoke-virtual {v1}, Ljava/lang/Thread;->getName()Ljava/lang/String;
    move-result-object v1
    invoke-virtual {v0, v1}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V
    iget-boolean v2, p0, LWorker;->explode:Z
    if-eqz v2, :ok
    new-instance v0, Ljava/lang/RuntimeException;
    const-string v1, "boom"
    invoke-direct {v0, v1}, Ljava/lang/RuntimeException;-><init>(Ljava/lang/String;)V
    throw v0
    :ok
    return-void
.end method
