plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "org.discomkd.edgedemo"
    compileSdk = 35

    defaultConfig {
        applicationId = "org.discomkd.edgedemo"
        minSdk = 26          // LiteRT 1.4.0's own minimum
        targetSdk = 35
        versionCode = 1
        versionName = "1.0"
        testInstrumentationRunner = "androidx.test.runner.AndroidJUnitRunner"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions {
        jvmTarget = "17"
    }
    // The model is memory-mapped straight from the APK: it must be stored uncompressed.
    androidResources {
        noCompress += "tflite"
    }
}

dependencies {
    // LiteRT (formerly TensorFlow Lite): the org.tensorflow.lite.Interpreter API.
    implementation("com.google.ai.edge.litert:litert:1.4.0")
    implementation("androidx.appcompat:appcompat:1.7.0")
    implementation("androidx.activity:activity-ktx:1.9.3")
    implementation("androidx.core:core-ktx:1.13.1")

    testImplementation("junit:junit:4.13.2")
    // ModelCardTest parses JSON on the JVM, where android.jar's org.json is only stubs.
    testImplementation("org.json:json:20240303")
}
