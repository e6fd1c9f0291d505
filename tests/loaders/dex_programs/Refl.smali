.class public LRefl;
.super Ljava/lang/Object;

.method static say(Ljava/lang/Object;)V
    .registers 2
    sget-object v0, Ljava/lang/System;->out:Ljava/io/PrintStream;
    invoke-virtual {v0, p0}, Ljava/io/PrintStream;->println(Ljava/lang/Object;)V
    return-void
.end method

.method public static main([Ljava/lang/String;)V
    .registers 10
    const-string v0, "Worker"
    invoke-static {v0}, Ljava/lang/Class;->forName(Ljava/lang/String;)Ljava/lang/Class;
    move-result-object v0
    invoke-virtual {v0}, Ljava/lang/Class;->getName()Ljava/lang/String;
    move-result-object v1
    invoke-static {v1}, LRefl;->say(Ljava/lang/Object;)V
    # Worker.square(int) by reflection: a boxed result
    const/4 v1, 1
    new-array v1, v1, [Ljava/lang/Class;
    sget-object v2, Ljava/lang/Integer;->TYPE:Ljava/lang/Class;
    const/4 v3, 0
    aput-object v2, v1, v3
    const-string v2, "square"
    invoke-virtual {v0, v2, v1}, Ljava/lang/Class;->getMethod(Ljava/lang/String;[Ljava/lang/Class;)Ljava/lang/reflect/Method;
    move-result-object v4
    invoke-virtual {v4}, Ljava/lang/reflect/Method;->getName()Ljava/lang/String;
    move-result-object v2
    invoke-static {v2}, LRefl;->say(Ljava/lang/Object;)V
    const/4 v1, 1
    new-array v1, v1, [Ljava/lang/Object;
    const/16 v2, 12
    invoke-static {v2}, Ljava/lang/Integer;->valueOf(I)Ljava/lang/Integer;
    move-result-object v2
    aput-object v2, v1, v3
    const/4 v2, 0
    invoke-virtual {v4, v2, v1}, Ljava/lang/reflect/Method;->invoke(Ljava/lang/Object;[Ljava/lang/Object;)Ljava/lang/Object;
    move-result-object v2
    invoke-static {v2}, LRefl;->say(Ljava/lang/Object;)V
    # an instance made by reflection, an instance method with a String argument
    new-array v1, v3, [Ljava/lang/Class;
    invoke-virtual {v0, v1}, Ljava/lang/Class;->getDeclaredConstructor([Ljava/lang/Class;)Ljava/lang/reflect/Constructor;
    move-result-object v2
    new-array v1, v3, [Ljava/lang/Object;
    invoke-virtual {v2, v1}, Ljava/lang/reflect/Constructor;->newInstance([Ljava/lang/Object;)Ljava/lang/Object;
    move-result-object v5
    const/4 v1, 1
    new-array v1, v1, [Ljava/lang/Class;
    const-class v2, Ljava/lang/String;
    aput-object v2, v1, v3
    const-string v2, "greet"
    invoke-virtual {v0, v2, v1}, Ljava/lang/Class;->getMethod(Ljava/lang/String;[Ljava/lang/Class;)Ljava/lang/reflect/Method;
    move-result-object v4
    const/4 v1, 1
    new-array v1, v1, [Ljava/lang/Object;
    const-string v2, "reflection"
    aput-object v2, v1, v3
    invoke-virtual {v4, v5, v1}, Ljava/lang/reflect/Method;->invoke(Ljava/lang/Object;[Ljava/lang/Object;)Ljava/lang/Object;
    move-result-object v2
    invoke-static {v2}, LRefl;->say(Ljava/lang/Object;)V
    # a method that throws: InvocationTargetException with the cause
    :ite_s
    const-string v2, "fail"
    new-array v1, v3, [Ljava/lang/Class;
    invoke-virtual {v0, v2, v1}, Ljava/lang/Class;->getMethod(Ljava/lang/String;[Ljava/lang/Class;)Ljava/lang/reflect/Method;
    move-result-object v4
    new-array v1, v3, [Ljava/lang/Object;
    invoke-virtual {v4, v5, v1}, Ljava/lang/reflect/Method;->invoke(Ljava/lang/Object;[Ljava/lang/Object;)Ljava/lang/Object;
    :ite_e
    .catch Ljava/lang/reflect/InvocationTargetException; {:ite_s .. :ite_e} :ite
    :after_ite
    :cnf_s
    const-string v2, "NoSuchClass"
    invoke-static {v2}, Ljava/lang/Class;->forName(Ljava/lang/String;)Ljava/lang/Class;
    :cnf_e
    .catch Ljava/lang/ClassNotFoundException; {:cnf_s .. :cnf_e} :cnf
    :after_cnf
    :nsm_s
    const-string v2, "absent"
    new-array v1, v3, [Ljava/lang/Class;
    invoke-virtual {v0, v2, v1}, Ljava/lang/Class;->getMethod(Ljava/lang/String;[Ljava/lang/Class;)Ljava/lang/reflect/Method;
    :nsm_e
    .catch Ljava/lang/NoSuchMethodException; {:nsm_s .. :nsm_e} :nsm
    :after_nsm
    # threads: a Thread subclass and a Runnable, each joined; one dies of an uncaught exception
    invoke-static {}, Ljava/lang/Thread;->currentThread()Ljava/lang/Thread;
    move-result-object v1
    invoke-virtual {v1}, Ljava/lang/Thread;->getName()Ljava/lang/String;
    move-result-object v1
    invoke-static {v1}, LRefl;->say(Ljava/lang/Object;)V
    new-instance v6, LWorker;
    invoke-direct {v6}, LWorker;-><init>()V
    invoke-virtual {v6}, LWorker;->start()V
    invoke-virtual {v6}, LWorker;->join()V
    new-instance v7, Ljava/lang/Thread;
    invoke-direct {v7, v6}, Ljava/lang/Thread;-><init>(Ljava/lang/Runnable;)V
    invoke-virtual {v7}, Ljava/lang/Thread;->start()V
    invoke-virtual {v7}, Ljava/lang/Thread;->join()V
    new-instance v8, LWorker;
    invoke-direct {v8}, LWorker;-><init>()V
    const/4 v1, 1
    iput-boolean v1, v8, LWorker;->explode:Z
    invoke-virtual {v8}, LWorker;->start()V
    invoke-virtual {v8}, LWorker;->join()V
    sget v1, LWorker;->runs:I
    invoke-static {v1}, Ljava/lang/Integer;->valueOf(I)Ljava/lang/Integer;
    move-result-object v1
    invoke-static {v1}, LRefl;->say(Ljava/lang/Object;)V
    return-void
    :ite
    move-exception v1
    invoke-static {v1}, LRefl;->say(Ljava/lang/Object;)V
    invoke-virtual {v1}, Ljava/lang/Throwable;->getCause()Ljava/lang/Throwable;
    move-result-object v1
    invoke-static {v1}, LRefl;->say(Ljava/lang/Object;)V
    goto :after_ite
    :cnf
    move-exception v1
    invoke-static {v1}, LRefl;->say(Ljava/lang/Object;)V
    goto :after_cnf
    :nsm
    move-exception v1
    invoke-static {v1}, LRefl;->say(Ljava/lang/Object;)V
    goto :after_nsm
.end method
