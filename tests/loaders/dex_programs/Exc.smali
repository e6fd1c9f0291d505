.class public LExc;
.super Ljava/lang/Object;

.method static divide(II)I
    .registers 3
    div-int v0, p0, p1
    return v0
.end method

.method static say(Ljava/lang/String;)V
    .registers 2
    sget-object v0, Ljava/lang/System;->out:Ljava/io/PrintStream;
    invoke-virtual {v0, p0}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V
    return-void
.end method

.method static show(Ljava/lang/Throwable;)V
    .registers 2
    sget-object v0, Ljava/lang/System;->out:Ljava/io/PrintStream;
    invoke-virtual {v0, p0}, Ljava/io/PrintStream;->println(Ljava/lang/Object;)V
    return-void
.end method

# try { if (x == 0) throw new IllegalStateException("zero"); return 10 / x; } finally { say("finally") }
.method static finallyDemo(I)I
    .registers 4
    :try_start
    if-nez p0, :ok
    new-instance v0, Ljava/lang/IllegalStateException;
    const-string v1, "zero"
    invoke-direct {v0, v1}, Ljava/lang/IllegalStateException;-><init>(Ljava/lang/String;)V
    throw v0
    :ok
    const/16 v0, 10
    div-int v0, v0, p0
    :try_end
    .catchall {:try_start .. :try_end} :finally
    const-string v1, "finally"
    invoke-static {v1}, LExc;->say(Ljava/lang/String;)V
    return v0
    :finally
    move-exception v2
    const-string v1, "finally"
    invoke-static {v1}, LExc;->say(Ljava/lang/String;)V
    throw v2
.end method

.method static deeper()V
    .registers 2
    new-instance v0, Ljava/lang/IllegalArgumentException;
    const-string v1, "bad argument"
    invoke-direct {v0, v1}, Ljava/lang/IllegalArgumentException;-><init>(Ljava/lang/String;)V
    throw v0
.end method

# try { deeper(); } catch (IllegalArgumentException e) { throw new Wrapped("wrapped", e); }
.method static deep()V
    .registers 3
    :s
    invoke-static {}, LExc;->deeper()V
    :e
    .catch Ljava/lang/IllegalArgumentException; {:s .. :e} :c
    return-void
    :c
    move-exception v0
    new-instance v1, LWrapped;
    const-string v2, "wrapped"
    invoke-direct {v1, v2, v0}, LWrapped;-><init>(Ljava/lang/String;Ljava/lang/Throwable;)V
    throw v1
.end method

.method public static main([Ljava/lang/String;)V
    .registers 6
    :t1s
    const/4 v0, 1
    const/4 v1, 0
    invoke-static {v0, v1}, LExc;->divide(II)I
    :t1e
    .catch Ljava/lang/ArithmeticException; {:t1s .. :t1e} :c1
    :after1
    :t2s
    const/4 v0, 2
    new-array v0, v0, [I
    const/4 v1, 5
    aget v1, v0, v1
    :t2e
    .catch Ljava/lang/RuntimeException; {:t2s .. :t2e} :c2
    :after2
    :t3s
    const/4 v0, 0
    array-length v0, v0
    :t3e
    .catch Ljava/lang/NullPointerException; {:t3s .. :t3e} :c3
    :after3
    :t4s
    const-string v0, "text"
    check-cast v0, Ljava/lang/Integer;
    :t4e
    .catch Ljava/lang/ClassCastException; {:t4s .. :t4e} :c4
    :after4
    :t6s
    new-instance v0, LWrapped;
    const-string v1, "as Object"
    const/4 v2, 0
    invoke-direct {v0, v1, v2}, LWrapped;-><init>(Ljava/lang/String;Ljava/lang/Throwable;)V
    move-object v1, v0
    check-cast v1, Ljava/lang/RuntimeException;
    invoke-static {v1}, LExc;->show(Ljava/lang/Throwable;)V
    check-cast v0, LExc;
    :t6e
    .catch Ljava/lang/ClassCastException; {:t6s .. :t6e} :c6
    :after6
    const/4 v0, 2
    invoke-static {v0}, LExc;->finallyDemo(I)I
    move-result v0
    invoke-static {v0}, Ljava/lang/String;->valueOf(I)Ljava/lang/String;
    move-result-object v0
    invoke-static {v0}, LExc;->say(Ljava/lang/String;)V
    :t5s
    const/4 v0, 0
    invoke-static {v0}, LExc;->finallyDemo(I)I
    :t5e
    .catch Ljava/lang/IllegalStateException; {:t5s .. :t5e} :c5
    :after5
    :t7s
    invoke-static {}, LExc;->deep()V
    :t7e
    .catch LWrapped; {:t7s .. :t7e} :c7
    :after7
    invoke-static {}, LExc;->deep()V
    return-void
    :c1
    move-exception v2
    invoke-static {v2}, LExc;->show(Ljava/lang/Throwable;)V
    goto :after1
    :c2
    move-exception v2
    invoke-static {v2}, LExc;->show(Ljava/lang/Throwable;)V
    goto :after2
    :c3
    const-string v2, "caught a NullPointerException"
    invoke-static {v2}, LExc;->say(Ljava/lang/String;)V
    goto :after3
    :c4
    move-exception v2
    invoke-static {v2}, LExc;->show(Ljava/lang/Throwable;)V
    goto :after4
    :c6
    move-exception v2
    invoke-static {v2}, LExc;->show(Ljava/lang/Throwable;)V
    goto :after6
    :c5
    move-exception v2
    invoke-virtual {v2}, Ljava/lang/Throwable;->getMessage()Ljava/lang/String;
    move-result-object v2
    invoke-static {v2}, LExc;->say(Ljava/lang/String;)V
    goto :after5
    :c7
    move-exception v2
    invoke-virtual {v2}, Ljava/lang/Throwable;->getCause()Ljava/lang/Throwable;
    move-result-object v3
    invoke-static {v3}, LExc;->show(Ljava/lang/Throwable;)V
    invoke-virtual {v2}, Ljava/lang/Throwable;->printStackTrace()V
    goto :after7
.end method
